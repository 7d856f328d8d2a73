"""Wire messages of the insurance pool and the loss waterfall (docs/pools.md,
"Insurance pool and waterfall"): the GetInsurance query and its Insurance
reply, the operator's SweepFees, and the replies of the waterfall's event
kinds. engine/schemas.py registers them in its request and reply unions."""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, reply_config, request_config


class GetInsurance(msgspec.Struct, **request_config(41)):
    """The insurance pool's balances and what each waterfall step has moved so far."""

    request_id: I64


class SweepFees(msgspec.Struct, **request_config(42)):
    """Move the insurance pool's share of the fees earned in ``asset`` since the
    last sweep from the fee account to it (operator)."""

    request_id: I64
    asset: I32


class StepTotal(msgspec.Struct, array_like=True, frozen=True):
    """What one waterfall step has moved in one asset, net of what went back:
    step 1 own assets, 2 penalty, 3 insurance pool, 4 main pool, 5 paid to
    deleveraged longs (ledger units)."""

    step: int
    asset: int
    amount: int


class InsuranceBalance(msgspec.Struct, array_like=True, frozen=True):
    """The insurance pool's balance of one asset (ledger units) and the share of
    fees due to it not yet swept."""

    asset: int
    total: int
    reserved: int
    fees_due: int


class HeldPenalty(msgspec.Struct, array_like=True, frozen=True):
    """Liquidation penalties of one asset the insurance pool holds for the
    liquidations in progress (ledger units, part of its reserved balance): drawn
    back first if a later step finds the account bankrupt, the fee account's
    share paid when the liquidation ends."""

    asset: int
    amount: int


class Insurance(msgspec.Struct, **reply_config(46)):
    """The pools' accounts (main -1: none), the insurance pool's balances, the
    waterfall's totals per step (its history in sum: each payment is in the
    journal as its own event) and the penalties held pending, per asset (the
    accounts being liquidated are not named)."""

    request_id: int
    insurance_account: int
    main_account: int
    balances: list[InsuranceBalance]
    steps: list[StepTotal]
    penalties_held: list[HeldPenalty] = []


def insurance_reply(request_id: int, state) -> Insurance:
    """The Insurance answer from the core's ``InsuranceState`` (engine/core/order_info.py):
    the penalties held are summed per asset."""
    held: dict[int, int] = {}
    for _, asset, amount in state.penalties_held:
        held[asset] = held.get(asset, 0) + amount
    return Insurance(request_id, state.insurance_account, state.main_account,
                     [InsuranceBalance(asset, total, reserved, due)
                      for asset, ((total, reserved), due) in enumerate(zip(state.balances, state.fees_due))],
                     [StepTotal(*row) for row in state.step_totals],
                     [HeldPenalty(asset, amount) for asset, amount in sorted(held.items())])


# -- replies of events (tag = EventKind) --------------------------------------------------


class PenaltyCharged(msgspec.Struct, **reply_config(27)):
    """A liquidation penalty: ``account`` paid ``amount`` of ``asset`` to ``payee``
    (the insurance pool, which passes the fee account its share); ``notional``:
    the premium the liquidation bought back (0 on the fee account's share)."""

    seq: int
    ts: int
    account: int
    payee: int
    asset: int
    amount: int
    notional: int


class LossCovered(msgspec.Struct, **reply_config(28)):
    """One step of the waterfall: ``account`` paid ``amount`` of ``asset`` to
    ``payee``; ``step`` 1 own assets, 2 penalty, 3 insurance, 4 main pool; side 1
    a loan to the bankrupt account, 2 what it did not use, paid back."""

    seq: int
    ts: int
    instrument: int
    step: int
    side: int
    account: int
    payee: int
    asset: int
    amount: int


class Deleveraged(msgspec.Struct, **reply_config(29)):
    """A long closed against a bankrupt short (auto-deleveraging): ``contracts``
    quantity units of ``account``'s position closed, ``amount`` of ``asset`` paid
    to it by ``bankrupt`` (the bankruptcy price); ``mark``: the series' mark."""

    seq: int
    ts: int
    instrument: int
    account: int
    bankrupt: int
    asset: int
    amount: int
    contracts: int
    mark: int


class FeesSwept(msgspec.Struct, **reply_config(30)):
    """A SweepFees was applied: ``amount`` of ``asset`` moved from the fee account
    to the insurance pool."""

    seq: int
    ts: int
    request_id: int
    asset: int
    amount: int


EVENT_COLUMN = {"payee": "maker_account", "notional": "price", "step": "aux", "bankrupt": "maker_account",
                "contracts": "leaves"}
"""Reply field -> EVENT_DTYPE column of these replies, where the names differ
(``amount`` and ``mark`` already have theirs in engine.schemas.EVENT_COLUMN)."""

INSURANCE_REQUESTS = (GetInsurance, SweepFees)
INSURANCE_REPLIES = (PenaltyCharged, LossCovered, Deleveraged, FeesSwept, Insurance)
