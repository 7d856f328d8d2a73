"""The in-process walk-through of the venue's parts: ``python -m demo walkthrough [--core-only]``.

Part 1, the matching core: a thin AMZNX book, the price bands that stop a
market order from printing far from the real price, self-trade prevention,
amend and cancel. Part 2, tokenized stocks as margin: TSLA.M backs short BTC
calls, a price move puts the account under its maintenance margin, the operator
liquidates it inside the bands; then a perpetual BTC call margined with TSLA.M
pays funding hour by hour. Part 3, settlement on the embedded EVM:
deposits, trading with pre-trade risk, netted batches settled exactly once, a
fill proved on chain, a withdrawal claimed. Part 4, an option chain's life:
listed at run time, covered calls, expiry, cash settlement at the feed's
TWAP, posted to the vault.
"""

from __future__ import annotations

import argparse

from demo.matching import MatchingDemo
from demo.options import OptionsDemo
from demo.options_perpetual import PerpetualDemo


def main(argv: list[str] | None = None) -> int:
    """Run the walk-through."""
    parser = argparse.ArgumentParser(prog="python -m demo walkthrough", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core-only", action="store_true", help="skip the settlement part")
    args = parser.parse_args(argv)
    print("# Part 1: the matching core")
    MatchingDemo().run()
    print("\n# Part 2: tokenized stocks as margin for options")
    OptionsDemo().run()
    PerpetualDemo().run()
    if not args.core_only:
        # Imported only here: --core-only runs without web3 and the embedded EVM.
        from demo.settlement import run as settlement_demo

        print("\n# Part 3: settlement on the embedded EVM")
        settlement_demo()
        from demo.options_expiry import run as expiry_demo

        print("\n# Part 4: an option chain listed, expiring and settled on chain")
        expiry_demo()
    return 0
