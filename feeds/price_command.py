"""``python -m feeds price``: print one option's mark and greeks as JSON, so an
operator can check any mark by hand: Black-Scholes for a dated series
(``--expiry-days``), the everlasting closed form for a perpetual one
(``--funding-days``)."""

from __future__ import annotations

import argparse
import json

from feeds.everlasting import everlasting
from feeds.options import black_scholes

_DAYS_PER_YEAR = 365  # ACT/365, as feeds.options.years_to_expiry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the ``price`` command."""
    parser.add_argument("--spot", type=float, required=True, help="underlying price")
    parser.add_argument("--strike", type=float, required=True, help="strike price")
    parser.add_argument("--vol", type=float, required=True, help="annual volatility, 0.6 for 60%%")
    parser.add_argument("--right", choices=("call", "put"), required=True)
    term = parser.add_mutually_exclusive_group(required=True)
    term.add_argument("--expiry-days", type=float, help="days to expiry of a dated series")
    term.add_argument("--funding-days", type=float, help="funding period of an everlasting series")
    parser.add_argument("--rate", type=float, help="annual interest rate of a dated series (default 0)")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Print the mark and greeks; bad numbers are usage errors with the reason."""
    is_call = args.right == "call"
    try:
        if args.funding_days is not None:
            if args.rate is not None:
                parser.error("--rate applies to --expiry-days only (everlasting marks use zero rate)")
            greeks = everlasting(args.spot, args.strike, args.vol, args.funding_days / _DAYS_PER_YEAR, is_call)
            model = {"model": "everlasting", "funding_days": args.funding_days}
        else:
            rate = 0.0 if args.rate is None else args.rate
            greeks = black_scholes(args.spot, args.strike, args.expiry_days / _DAYS_PER_YEAR, args.vol, rate,
                                   is_call)
            model = {"model": "black-scholes", "expiry_days": args.expiry_days, "rate": rate}
    except ValueError as err:
        parser.error(str(err))
    inputs = {"spot": args.spot, "strike": args.strike, "vol": args.vol, "right": args.right}
    print(json.dumps({**inputs, **model, **{name: float(value) for name, value in greeks._asdict().items()}}))
    return 0
