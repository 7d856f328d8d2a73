"""The venue's pools: the main pool's quoting process (``quoter``, its pure
arithmetic in ``quote_model``, its configuration in ``quoter_config``), run
with ``python -m pools``."""
