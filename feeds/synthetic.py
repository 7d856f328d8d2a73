"""Synthetic prices: geometric Brownian motion per asset with a seed (BTC and ETH in
demos and benchmarks). The same seed, start and step give the same path whatever
the polling times."""

from __future__ import annotations

import math

import numpy as np

from feeds.update import NS_PER_SECOND, MarketStatus, PriceUpdate, usd_units_rounded

SECONDS_PER_YEAR = 365 * 24 * 3600


class GbmSource:
    """A Source: ``S(t + dt) = S(t) exp((mu - sigma^2 / 2) dt + sigma sqrt(dt) Z)``, one
    step every ``step_ns`` from ``start`` (ns since the epoch); ``mu`` and ``sigma`` are
    per year. Each update's confidence is ``confidence_bps`` of its price."""

    def __init__(self, name: str, asset: str, *, initial: float, sigma: float, start: int, step_ns: int,
                 seed: int, mu: float = 0.0, confidence_bps: int = 0) -> None:
        if not (initial > 0 and sigma >= 0 and step_ns > 0):
            raise ValueError(f"{name}: GBM needs initial > 0, sigma >= 0, step > 0")
        self.name = name
        self.asset = asset
        dt = step_ns / NS_PER_SECOND / SECONDS_PER_YEAR
        self._drift = (mu - sigma * sigma / 2) * dt
        self._diffusion = sigma * math.sqrt(dt)
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._log_price = math.log(initial)
        self._step_ns = step_ns
        self._next = start
        self._started = False
        self.confidence_bps = confidence_bps

    def poll(self, now: int) -> list[PriceUpdate]:
        """One update per step due by ``now``; the first step is the initial price."""
        count = 0 if now < self._next else (now - self._next) // self._step_ns + 1
        if not count:
            return []
        steps = self._drift + self._diffusion * self._rng.standard_normal(count)
        if not self._started:
            steps[0] = 0.0   # the first update is the initial price itself
            self._started = True
        # Summed from the carried log price, in order, so any split of the polls gives the same floats.
        paths = np.cumsum(np.concatenate(([self._log_price], steps)))[1:]
        out = []
        for i, log_price in enumerate(paths):
            price = usd_units_rounded(math.exp(log_price))
            out.append(PriceUpdate(asset=self.asset, price=price, confidence=price * self.confidence_bps // 10_000,
                                   timestamp=self._next + i * self._step_ns, source=self.name,
                                   market=MarketStatus.OPEN))
        self._log_price = float(paths[-1])
        self._next += count * self._step_ns
        return out
