"""The executable specification of docs/matching.md, in plain Python: the
matching reference (`ReferenceMatcher`), bands, and the models of risk
(reservations, fees, balances from events) and margin (collateral,
requirements, liquidation). Tests and benchmarks import it; the Cython core
does not."""

from engine.reference.matcher import Command, ReferenceMatcher

__all__ = ["Command", "ReferenceMatcher"]
