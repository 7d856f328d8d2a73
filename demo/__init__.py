"""The venue demo, run as ``python -m demo`` (``./dev.sh demo``).

It drives the product packages (engine, feeds, settlement) from outside, so
that none of them imports a demo: part 1 the matching core (matching.py),
part 2 tokenized stocks as margin for options (options.py), part 3 settlement
on the embedded EVM (settlement.py).
"""
