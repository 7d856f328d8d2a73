"""The venue demo, end to end as real processes on loopback (``python -m demo``): the
chain, the vault and test tokens, the wallets' deposits, the gateway, the live web view,
the feed process, the settlement job, watchers and watchtower, the pool's quoting
process, and simulated participants trading through the client SDK; then the summary,
its checks and the report folder."""

from __future__ import annotations

import argparse
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from demo.participants.base import Participant
from demo.participants.liquidity_provider import LiquidityProvider
from demo.participants.market_maker import MarketMaker
from demo.participants.perpetual_writer import PerpetualWriter
from demo.participants.taker import Taker
from demo.participants.thin_book import ThinBookBuyer, run_thin_book
from demo.processes import ProcessError, ProcessGroup, Stopped
from demo.venue_chain import DemoChain, pick_chain
from demo.venue_config import (
    ACCOUNTS,
    BY_NAME,
    CHALLENGE_WINDOW_S,
    EXPIRES_AFTER_S,
    PERPETUAL,
    POOL_COOLDOWN_S,
    POOL_DEPOSIT_COOLDOWN_S,
    POOL_FEE_BPS,
    SHARE,
    TSLA_BTC,
    write_feeds_config,
    write_keys,
    write_pools_config,
    write_venue_config,
)
from demo.venue_expiry import ExpirySummary, settled
from demo.venue_pool import PoolSummary, start_quoter
from demo.venue_report import Recorder, Report
from demo.venue_settlement import SettlementInProcess, SettlementProcesses
from demo.venue_web import capture_check, start_web
from engine.client import Client, ClientKeys
from engine.core.types import TradingState
from engine.schemas import Debited, Reject

STOCK_PAIRS = ["AMZNX/USDC", "AAPLX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"]
THIN_BOOK = "AMZNX/USDC"
TSLA_PUT = "TSLA.M-20261218-250-P"
WITHDRAWAL = ("lp-b", "USDC", 1_000_000_000)   # 1,000 USDC in ledger units
SEED = ("lp-a", 50_000_000_000)               # the pool's first provider: 50,000 USDC, before it quotes
PROVIDER = ("lp-b", 10_000_000_000)            # deposits 10,000 USDC into the pool and redeems it
DEFAULT_DURATION_S = 45.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__,
                                     epilog="python -m demo walkthrough: the in-process walk-through of each part")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                        help=f"seconds of trading (default {DEFAULT_DURATION_S:.0f})")
    parser.add_argument("--chain", choices=("auto", "anvil", "embedded"), default="auto",
                        help="anvil (a node process) or the embedded in-process EVM; auto: anvil if installed")
    parser.add_argument("--report", type=Path,
                        help="report folder (default demo-report/<UTC timestamp>/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the demo; 0 only if every check of the summary holds."""
    args = parse_args(argv)
    report_dir = args.report or Path("demo-report") / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run = report_dir / "run"
    run.mkdir(parents=True, exist_ok=False)
    kind, why = pick_chain(args.chain)
    print(f"venue demo: report folder {report_dir}; chain: {kind} ({why})", flush=True)
    try:
        with ProcessGroup(run / "logs") as group:
            report = VenueRun(run, group, kind).play(args.duration)
    except Stopped as signal_name:
        print(f"\nstopped by {signal_name}: every process stopped", flush=True)
        return 130
    except ProcessError as err:
        print(f"\nFAILED: {err}\nevery process stopped", flush=True)
        return 1
    return report.finish(report_dir)


class VenueRun:
    """One run of the venue: set-up, scenarios, trading, settlement to the end."""

    def __init__(self, run: Path, group: ProcessGroup, chain_kind: str) -> None:
        self.run = run
        self.group = group
        self.chain_kind = chain_kind
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        """A progress line."""
        print(f"[{time.monotonic() - self.start:5.1f}s] {text}", flush=True)

    def play(self, duration: float) -> Report:
        """Everything, in order; returns the report of what happened."""
        keys = write_keys(self.run)
        config = write_venue_config(self.run, keys)
        chain = DemoChain.start(self.chain_kind, self.group, self.run, config)
        self.say(f"chain up ({chain.url}); vault {chain.vault.address} and {len(chain.deployment.assets)} test "
                 f"tokens deployed (AMZNX rebasing, in shares)")
        gateway = self._gateway(config)
        self.say(f"gateway up: orders {gateway.orders}, market data {gateway.market_data}")
        ops = Client(gateway.orders, ClientKeys.from_files(keys / "ops.key_secret", keys / "server.key"))
        try:
            with start_web(self.run, config, keys, gateway.orders, gateway.market_data,
                           chain.url if chain.kind == "anvil" else None) as web:
                self.say(f"web view up: {web.url}")
                return self._play(duration, keys, config, chain, gateway, ops, web.url)
        finally:
            ops.close()

    def _gateway(self, config: Path) -> Endpoints:
        log = self.group.log_path("gateway")
        self.group.python("gateway", ["engine.gateway", "--config", str(config)], lambda: _ready_line(log) is not None)
        return _ready_line(log)

    def _play(self, duration: float, keys: Path, config: Path, chain: DemoChain, gateway: Endpoints,
              ops: Client, web_url: str) -> Report:
        if chain.kind == "anvil":
            settlement = SettlementProcesses(self.run, config, self.group, chain, gateway.orders)
            self.say("settlement job, deposit watcher, exit watcher and watchtower started as processes")
        else:
            settlement = SettlementInProcess(self.run, config, chain, ops)
            self.say("settlement job, watchers and watchtower run inside the demo (the embedded EVM lives here)")
        listing = ops.instruments()
        instruments = {i.symbol: i for i in listing.instruments}
        tsla = next(a.asset for a in listing.assets if a.symbol == "TSLA.M")
        expiring = next(i for i in listing.instruments if i.expiry_time)
        amzn = instruments[THIN_BOOK].instrument
        configured = ops.snapshot(amzn, 1).reference   # until the feed process sends its first
        # the feed process starts while the wallets deposit: it needs no balance
        feeds_config = write_feeds_config(self.run, keys, gateway.orders)
        self.group.python("feeds", ["feeds", "run", "--config", str(feeds_config)])
        deposits = chain.deposit_all()
        chain.mine(2)
        self._wait(lambda: ops.status().last_deposit_id >= deposits, settlement, 60, "deposits credited")
        self.say(f"{deposits} vault deposits from {len(BY_NAME)} wallets credited by the deposit watcher")
        self._wait(lambda: ops.snapshot(amzn, 1).reference != configured,
                   settlement, 60, "the feed's first AMZNX reference")
        self.say("feed process up: AMZN/AAPL replayed from LOBSTER, BTC/ETH/TSLA/NVDA synthetic, XNYS calendar")

        def participant(cls, name, **options) -> Participant:
            return cls(name, gateway.orders, keys, instruments, **options)

        recorder = Recorder(ops, instruments, [THIN_BOOK, "AAPLX/USDC", TSLA_BTC])
        mm_stocks = participant(MarketMaker, "mm-stocks", symbols=STOCK_PAIRS, size=5, spread_bps=20)
        mm_btc = participant(MarketMaker, "mm-btc", symbols=[TSLA_BTC], size=5, spread_bps=30)
        buyer = participant(ThinBookBuyer, "thin-buyer", symbol=THIN_BOOK)
        thin = run_thin_book(mm_stocks, buyer)
        buyer.client.close()   # its one order is done; the others close theirs when their threads end
        for line in thin.lines():
            self.say("thin book: " + line)
        seed, provider = self._pool(participant, gateway, keys, chain.symbols[SHARE])
        writer = participant(PerpetualWriter, "tsla-writer", symbol=PERPETUAL)
        self._wait(lambda: _open(ops, instruments[PERPETUAL].instrument), settlement, 30, "the perpetual's mark")
        perpetual_refused = writer.open_position(mm_btc, 0.5)
        self.say("perpetual: tsla-writer (TSLA.M only) wrote 0.5 BTC-PERP-100000-C to mm-btc"
                 if perpetual_refused is None else f"perpetual: not traded: {perpetual_refused}")
        takers = [participant(Taker, "taker-a", symbols=["AMZNX/USDC", "AAPLX/USDC", "NVDA.M/USDC"], size=0.5,
                              cross_bps=40, seed=1),
                  participant(Taker, "taker-b", symbols=["TSLA.M/USDC", TSLA_BTC], size=0.5, cross_bps=60, seed=2),
                  participant(Taker, "opt-taker", symbols=[TSLA_PUT, expiring.symbol], size=0.5, cross_bps=800,
                              seed=3)]
        stop = threading.Event()
        for trader, interval in ((mm_stocks, 1.0), (mm_btc, 1.0), (writer, 1.0), *((t, 0.3) for t in takers)):
            trader.start(stop, interval)
        self.say(f"trading for {duration:.0f} s: 2 market makers, the pool's quoter, 3 takers, the perpetual "
                 f"writer, a pool provider")
        exit_wallet = chain.book.wallet(BY_NAME["exiter"].id)
        withdrawal = None
        try:
            end = time.monotonic() + duration
            last_line = 0.0
            while (now := time.monotonic()) < end:
                self.group.check_alive()
                settlement.tick()
                recorder.sample()
                provider.step()
                elapsed = duration - (end - now)
                if withdrawal is None and elapsed >= duration / 3:
                    withdrawal = self._exit_and_withdraw(chain, ops)
                if now - last_line >= 5:
                    last_line = now
                    self.say(f"orders {sum(p.tally['orders'] for p in (mm_stocks, mm_btc, *takers))}, "
                             f"fills {sum(p.tally['fills'] for p in (mm_stocks, mm_btc, *takers))}, "
                             f"batches settled {chain.vault.last_batch()[0]}, "
                             f"funding received by tsla-writer {writer.funding_received() / 1e6:.6f} USDC")
                time.sleep(0.5)
        finally:
            stop.set()
            for trader in (mm_stocks, mm_btc, writer, *takers):
                trader.thread.join(10)
        if withdrawal is None:   # a trading phase too short to reach them still runs them
            withdrawal = self._exit_and_withdraw(chain, ops)
        web = capture_check(web_url, self.run.parent / "web.png")
        self.say(f"web view in headless Chromium: {web.detail}")
        provider.finish(POOL_COOLDOWN_S + 10)
        self._wait(lambda: settled(ops, tsla, expiring.instrument), settlement, EXPIRES_AFTER_S + 30,
                   f"{expiring.symbol}'s expiry and settlement by the feed process")
        self.say(f"{expiring.symbol} expired and the feed process settled it at its TWAP")
        provider.client.close()
        self.group.stop("pool-quoter")
        self.group.stop("feeds")   # its funding steps would add records while the last batches settle
        self.say("trading, the pool's quoter and the feed process stopped; settling what is left")
        self._wait(lambda: settlement.unsettled() == 0 and chain.vault.wallet_state(exit_wallet)[1],
                   settlement, 60, "every record settled and the exit served")
        chain.mine()
        self._wait(lambda: len(settlement.audits()) >= chain.vault.last_batch()[0], settlement, 30,
                   "the watchtower's audit of every batch")
        claim = self._claim(chain, isinstance(withdrawal, Debited))
        self.group.check_alive()
        pool = PoolSummary.collect(ops, config, settlement.journal_path, seed, provider)
        expiry = ExpirySummary.collect(ops, settlement.journal_path, tsla, expiring,
                                       {a.id: a.name for a in ACCOUNTS}, settlement.unsettled())
        return Report.collect(chain, ops, settlement, recorder, thin, writer, mm_btc,
                              [mm_stocks, mm_btc, writer, buyer, *takers, provider], claim, perpetual_refused, pool,
                              web, expiry)

    def _pool(self, participant, gateway: Endpoints, keys: Path, share: int) -> tuple[LiquidityProvider, ...]:
        """The first provider's seed deposit, the pool's quoting process, and the provider
        that deposits now and redeems after the cooldown: (seed, provider)."""
        name, amount = SEED
        seed = participant(LiquidityProvider, name, pool=share, amount=amount, fee_bps=POOL_FEE_BPS,
                           deposit_cooldown_s=POOL_DEPOSIT_COOLDOWN_S)
        refused = seed.deposit()
        seed.client.close()
        if refused:
            raise ProcessError(f"the pool's seed deposit was refused: {refused}")
        start_quoter(self.group, write_pools_config(self.run, keys, gateway.orders))
        name, amount = PROVIDER
        provider = participant(LiquidityProvider, name, pool=share, amount=amount, fee_bps=POOL_FEE_BPS,
                               deposit_cooldown_s=POOL_DEPOSIT_COOLDOWN_S)
        refused = provider.deposit()
        if refused:
            raise ProcessError(f"{name}'s pool deposit was refused: {refused}")
        self.say(f"pool: {seed.name} seeded it with {seed.amount / 1e6:,.0f} USDC, the quoting process runs, "
                 f"{name} deposited {amount / 1e6:,.0f} USDC for {provider.shares / 1e6:,.2f} {SHARE} "
                 f"after its {POOL_DEPOSIT_COOLDOWN_S} s deposit cooldown (redemption cooldown {POOL_COOLDOWN_S} s)")
        return seed, provider

    def _exit_and_withdraw(self, chain: DemoChain, ops: Client):
        """The exiter's wallet requests a forced exit on chain; an LP withdraws (an operator debit)."""
        chain.wallet(BY_NAME["exiter"].id).transact(chain.vault.contract.functions.requestExit())
        chain.mine()
        name, symbol, amount = WITHDRAWAL
        withdrawal = ops.debit(BY_NAME[name].id, chain.symbols[symbol], amount)
        self.say(f"exiter's wallet requested a forced exit; {name} withdraws {amount / 1e6:,.0f} {symbol}: "
                 f"{'debited' if isinstance(withdrawal, Debited) else withdrawal}")
        return withdrawal

    def _claim(self, chain: DemoChain, debited: bool) -> tuple[int, int]:
        """Move the chain past the challenge window and claim the withdrawal: (expected, received) token units."""
        name, symbol, amount = WITHDRAWAL
        account, asset = BY_NAME[name].id, chain.symbols[symbol]
        chain.advance(2 * CHALLENGE_WINDOW_S + 1)
        before = chain.token_balance(account, asset)
        chain.wallet(account).transact(chain.vault.contract.functions.claim(asset))
        received = chain.token_balance(account, asset) - before
        expected = amount * chain.deployment.scale(asset) if debited else 0
        self.say(f"{name} claimed its withdrawal after the {CHALLENGE_WINDOW_S} s challenge window "
                 f"(chain clock moved on): {received / chain.deployment.scale(asset) / 1e6:,.2f} {symbol}")
        return expected, received

    def _wait(self, condition, settlement, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.group.check_alive()
            if time.monotonic() > deadline:
                raise ProcessError(f"timed out after {timeout:.0f} s waiting for {what}")
            settlement.tick()
            time.sleep(0.2)


class Endpoints(NamedTuple):
    """The gateway's bound endpoints, from its ready line."""

    orders: str
    market_data: str


def _ready_line(log: Path) -> Endpoints | None:
    """The endpoints of the gateway's ``ready`` line in its log, once it is there."""
    for line in log.read_text().splitlines():
        if line.startswith("ready "):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            return Endpoints(fields["orders"], fields["market_data"])
    return None


def _open(ops: Client, instrument: int) -> bool:
    snapshot = ops.snapshot(instrument, 1)
    return not isinstance(snapshot, Reject) and snapshot.state == TradingState.OPEN and snapshot.reference > 0
