"""The venue demo, run as ``python -m demo`` (``./dev.sh demo``).

It drives the product packages (engine, feeds, settlement) from outside, so
that none of them imports a demo. ``venue.py``: the venue end to end as real
processes (``processes.py``, ``venue_config.py``, ``venue_chain.py``,
``venue_settlement.py``, ``participants/``, ``venue_report.py``).
``walkthrough.py`` (``python -m demo walkthrough``): the in-process tour, part 1
the matching core (matching.py), part 2 tokenized stocks as margin for options
(options.py, options_perpetual.py), part 3 settlement on the embedded EVM
(settlement.py), part 4 an option chain's expiry (options_expiry.py).
"""
