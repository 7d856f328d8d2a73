"""The venue's pools: the main pool's quoting process (``quoter``, its pure
arithmetic in ``quote_model``, its configuration in ``quoter_config``) and its P&L
attribution report (``report``), run with ``python -m pools``."""
