"""Liquidity pools beside the venue's core: the main pool's P&L attribution report
(``python -m pools report``)."""
