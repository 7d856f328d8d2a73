"""The loss waterfall's arithmetic in plain Python (engine/core/losses.pyx and
waterfall.pyx are the fast version; docs/pools.md, "Insurance pool and
waterfall", states the rules): the liquidation penalty, the penalties held
across the steps of a liquidation until it ends, what each step lends a
bankrupt account and gets back, the order in which the opposite longs are
deleveraged (by profit and leverage), and how a deleveraged short's payment
splits over them. Tests drive the core and check its events against these."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

BPS = 10_000

OWN, PENALTY, INSURANCE, MAIN, ADL = 1, 2, 3, 4, 5
LENDERS = (PENALTY, INSURANCE, MAIN)


def penalty(closed_notional: int, penalty_bps: int, free: int) -> int:
    """The penalty of a liquidation that bought back ``closed_notional``, at most the account's free premium."""
    return max(0, min(closed_notional * penalty_bps // BPS, free))


def penalty_fee_part(kept: int, penalty_share_bps: int) -> int:
    """What of the penalty the insurance pool kept goes on to the fee account."""
    return kept - kept * penalty_share_bps // BPS


def liquidation_ended(collateral: int, maintenance: int, frozen: bool) -> bool:
    """Whether a liquidation is over after a command: the account is no longer
    under its maintenance margin, has nothing left to close (no requirement), or is
    frozen (no step may run on it). A deposit that leaves it under its maintenance
    margin does not end it."""
    return frozen or maintenance == 0 or collateral >= maintenance


@dataclass
class HeldPenalties:
    """The penalties the insurance pool holds for liquidations in progress:
    {account: {asset: amount}}, what every step charged and the penalty step has
    not drawn back; when a liquidation ends the fee account's share of what is
    left goes on to it (penalty_fee_part), the rest stays with the insurance pool."""

    held: dict[int, dict[int, int]] = field(default_factory=dict)

    def left(self, account: int, asset: int) -> int:
        """What the account's penalty step can still draw in ``asset``."""
        return self.held.get(account, {}).get(asset, 0)

    def charge(self, account: int, asset: int, amount: int) -> None:
        """A step charged the account ``amount`` (held from now on)."""
        penalty = self.held.setdefault(account, {})
        penalty[asset] = penalty.get(asset, 0) + amount

    def draw(self, account: int, asset: int, amount: int) -> None:
        """The penalty step lent the account ``amount`` (negative: it gave it back)."""
        if amount > self.left(account, asset):
            raise ValueError(f"account {account} draws {amount} of a held penalty of {self.left(account, asset)}")
        self.charge(account, asset, -amount)

    def end(self, account: int, penalty_share_bps: int) -> dict[int, int]:
        """End the account's liquidation: {asset: fee part} paid to the fee account."""
        out = {}
        for asset, left in sorted(self.held.pop(account, {}).items()):
            fee_part = penalty_fee_part(left, penalty_share_bps)
            if fee_part > 0:
                out[asset] = fee_part
        return out

    def rows(self) -> list[tuple[int, int, int]]:
        """[(account, asset, amount)] held, nonzero, sorted (InsuranceState.penalties_held)."""
        return [(account, asset, amount) for account, penalty in sorted(self.held.items())
                for asset, amount in sorted(penalty.items()) if amount]


@dataclass
class Sources:
    """What the lending steps can give in the premium asset: the penalty held for
    this liquidation (every step's, not yet drawn back), and the pools' balances
    (the insurance pool's includes that penalty, held apart from its own)."""

    penalty_left: int
    insurance_free: int
    main_free: int

    def available(self, step: int) -> int:
        if step == PENALTY:
            return min(self.insurance_free, self.penalty_left)
        if step == INSURANCE:
            return max(0, self.insurance_free - self.penalty_left)
        return max(0, self.main_free)


def lend(want: int, sources: Sources) -> dict[int, int]:
    """{step: amount} the steps lend, in order, towards ``want``; updates ``sources``."""
    out = {}
    for step in LENDERS:
        amount = min(want - sum(out.values()), sources.available(step))
        if amount <= 0:
            continue
        out[step] = amount
        if step in (PENALTY, INSURANCE):
            sources.insurance_free -= amount
            if step == PENALTY:
                sources.penalty_left -= amount
        else:
            sources.main_free -= amount
    return out


def give_back(lent: dict[int, int], unused: int) -> dict[int, int]:
    """{step: amount} of ``unused`` that goes back, main pool first, at most what each lent."""
    out = {}
    for step in reversed(LENDERS):
        part = min(unused, lent.get(step, 0))
        if part > 0:
            out[step] = part
            unused -= part
    return out


def adl_score(value: int, cost: int, collateral: int) -> Fraction:
    """A long's deleveraging rank (higher: closed first), BitMEX's rule: with
    profit = value at the mark - cost basis, profit ratio r = profit / max(cost, 1)
    and leverage L = value / (collateral + 1), r x L if the long is in profit,
    r / L (value at least 1) otherwise."""
    profit = value - cost
    ratio = Fraction(profit, max(cost, 1))
    leverage = Fraction(max(value, 1) if profit <= 0 else value, collateral + 1)
    return ratio * leverage if profit > 0 else ratio / leverage


def rank_longs(longs: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int]]:
    """[(account, position)] to deleverage first to last, from [(account,
    position, value at the mark, cost basis, collateral)]: adl_score descending,
    then the larger position, then the lower account id."""
    keyed = sorted((-adl_score(value, cost, collateral), -pos, acct) for acct, pos, value, cost, collateral in longs)
    return [(acct, -neg_pos) for _, neg_pos, acct in keyed]


def deleverage(ranked: list[tuple[int, int]], qty: int, paid: int) -> list[tuple[int, int, int]]:
    """[(account, contracts, amount)]: ``qty`` of a bankrupt short closed against the
    ranked longs, each paid paid x contracts // qty, the last the remainder."""
    out = []
    left, given = qty, 0
    for acct, pos in ranked:
        if left == 0:
            break
        k = min(pos, left)
        left -= k
        amount = paid - given if left == 0 else paid * k // qty
        given += amount
        out.append((acct, k, amount))
    return out
