"""A liquidity provider of the main pool: requests a deposit of USDC and waits for the
pool's clock to execute it after the deposit cooldown, requests the redemption of all
its shares, and waits for the pool's clock to execute that once the pool's cooldown
has passed, keeping the PoolPaid answers that say what it paid, received and was
charged."""

from __future__ import annotations

from demo.participants.base import Participant
from engine.schemas import Reject
from engine.schemas_pools import PoolPaid, RedemptionRequested
from engine.units import BPS, NS_PER_S, POOL_PPS_SCALE


class LiquidityProvider(Participant):
    """Deposits ``amount`` pool-asset ledger units into the pool of share asset ``pool``
    (``deposit``), then requests its redemption (``step``) and waits for its payment (``finish``)."""

    def __init__(self, *args, pool: int, amount: int, fee_bps: int, deposit_cooldown_s: int) -> None:
        super().__init__(*args)
        self.pool = pool
        self.amount = amount
        self.fee_bps = fee_bps
        self.deposit_cooldown_s = deposit_cooldown_s
        self.deposit_paid: list[PoolPaid] = []
        self.request: RedemptionRequested | None = None
        self.redemption_paid: list[PoolPaid] = []
        self.refusals: list[str] = []

    def deposit(self) -> str | None:
        """Request the deposit and wait until the pool's clock has executed it; None, or
        why it was refused."""
        reply = self.client.pool_deposit(self.pool, self.amount)
        if isinstance(reply, Reject):
            return reply.text
        self.deposit_paid = self.client.pool_deposit_paid(reply.request, timeout=self.deposit_cooldown_s + 30)
        return None

    @property
    def shares(self) -> int:
        """Shares received for the deposit (the second PoolPaid pays them to the provider)."""
        return -self.deposit_paid[1].amount if self.deposit_paid else 0

    @property
    def done(self) -> bool:
        """Whether the redemption has been executed."""
        return bool(self.redemption_paid)

    def step(self) -> None:
        """Request the redemption of all the shares once they are held (the pool's clock
        executes it when due)."""
        if not self.shares or self.request is not None:
            return
        reply = self.client.pool_redeem(self.pool, self.shares)
        if isinstance(reply, Reject):
            self.refusals.append(reply.text)
        else:
            self.request = reply

    def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the pool's clock to pay the redemption (a
        short run ends its trading before the cooldown does)."""
        self.step()
        if self.request is None or self.done:
            return
        try:
            self.redemption_paid = self.client.pool_redeem_paid(self.request.redemption, timeout=timeout)
        except TimeoutError as err:
            self.refusals.append(str(err))

    def redemption(self) -> dict | None:
        """What the redemption paid, and what NAV less the fee says it should have:
        gross = floor(shares x NAV per share / 1e12), fee = ceil(gross x fee_bps / 10000)."""
        if not self.done:
            return None
        shares_back, received = self.redemption_paid
        pps = received.nav_per_share
        gross = shares_back.amount * pps // POOL_PPS_SCALE
        fee = -(-gross * self.fee_bps // BPS)
        return {"shares": shares_back.amount, "nav_per_share": pps, "received": -received.amount,
                "fee": received.fee, "expected_received": gross - fee, "expected_fee": fee,
                "deposited": self.deposit_paid[0].amount,
                "held_s": (received.ts - self.deposit_paid[0].ts) / NS_PER_S}
