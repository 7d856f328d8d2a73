"""Where the view's data comes from: the gateway (market data, instruments, chains,
status), the settlement job's state directory (batch records, checkpoint, gas from
receipts) and a pluggable pool source. ``Collector`` polls them on one thread and
hands a fresh document (web/model.py) to a callback after every change.

Every call is a query: nothing here sends an order or an operator command.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import zmq

from engine.client import Client, ClientKeys, MarketDataSubscriber
from engine.schemas import MD_DECODER, AssetInfo, InstrumentStatus, Reject, Trades, md_seq_from
from web.model import MAX_TRADES, InstrumentFeed, chain_view, instrument_view, pool_row

QUERY_TIMEOUT = 1.5
"""Seconds a gateway query may take before the gateway counts as unreachable."""


class _Subscriber(MarketDataSubscriber):
    """The SDK's subscriber, also keeping the gateway timestamps of trades and of
    reference changes (the local book keeps the trades, not when they happened)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trade_times: dict[int, list] = {iid: [] for iid in self.books}
        self.reference_ts: dict[int, int] = {}

    def handle(self, frames: list[bytes]) -> None:
        """Apply one message, noting when trades and reference changes happened."""
        if len(frames) == 3 and frames[0] in self.by_topic:
            iid = self.by_topic[frames[0]]
            message = MD_DECODER.decode(frames[2])
            if md_seq_from(frames[1]) > self.books[iid].seq:
                match message:
                    case Trades(ts=ts, trades=trades):
                        kept = self.trade_times[iid]
                        kept.extend((ts, t) for t in trades)
                        del kept[:-MAX_TRADES]
                    case InstrumentStatus(ts=ts, reference=reference) if reference != self.books[iid].state[1]:
                        self.reference_ts[iid] = ts
        super().handle(frames)


class PoolSource(Protocol):
    """Where the pools panel's rows come from: ``read(client)`` returns one dict per
    pool (name, NAV, shares... as the gateway reports them), or None when the venue
    has no pools or the gateway cannot say (then the panel says so, never a number)."""

    def read(self, client: Client) -> list[dict] | None:
        """The pools' rows, or None."""


class GatewayPools:
    """The main pool as the gateway reports it (GetPoolInfo): one row with its NAV,
    NAV per share, time-weighted NAV per share, shares outstanding, pending
    redemptions, cooldown and fee, in display units; None when the venue has no
    main pool (NO_POOL) or the gateway refuses the query."""

    def __init__(self) -> None:
        self._assets: dict[int, AssetInfo] = {}

    def read(self, client: Client) -> list[dict] | None:
        """The main pool's row, or None."""
        info = client.pool_info()
        if isinstance(info, Reject):
            return None
        if info.pool not in self._assets or info.asset not in self._assets:
            reply = client.instruments()
            if isinstance(reply, Reject):
                return None
            self._assets = {a.asset: a for a in reply.assets}
        return [pool_row(info, self._assets[info.pool], self._assets[info.asset])]


class SettlementBatches:
    """The settlement job's batches from its state directory (settlement/job.py's
    JobStore files, read only): batch id, fills root, record count, whether the
    checkpoint covers it, and the gas its settle transaction used when a JSON-RPC
    URL is given (read from the mined transaction's receipt, once per batch)."""

    def __init__(self, state_dir: Path | None, rpc_url: str | None = None, keep: int = 20) -> None:
        self.state_dir = state_dir
        self.keep = keep
        self.rpc_url = rpc_url
        self._w3 = None
        self._gas: dict[int, dict] = {}

    def read(self) -> dict:
        """{"message": why there is nothing, or None; "batches": newest first; "checkpoint": batch id}."""
        if self.state_dir is None:
            return {"message": "no settlement state directory given (--settlement-state)", "batches": [],
                    "checkpoint": None}
        batches_dir = self.state_dir / "batches"
        if not batches_dir.is_dir():
            return {"message": f"no settlement batches yet: {batches_dir} does not exist", "batches": [],
                    "checkpoint": None}
        try:
            checkpoint = self._checkpoint()
            rows = [self._row(path, checkpoint) for path in sorted(batches_dir.glob("*.json"))[-self.keep:]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            return {"message": f"cannot read the settlement state: {err}", "batches": [], "checkpoint": None}
        return {"message": None if rows else "no batch settled yet", "batches": rows[::-1], "checkpoint": checkpoint}

    def _checkpoint(self) -> int:
        path = self.state_dir / "checkpoint.json"
        return int(json.loads(path.read_text())["batch_id"]) if path.exists() else 0

    def _row(self, path: Path, checkpoint: int) -> dict:
        record = json.loads(path.read_text())
        batch_id = int(record["batch_id"])
        settled = batch_id <= checkpoint
        row = {"batch_id": batch_id, "fills_root": record["fills_root"], "records": record["record_count"],
               "settled": settled, "served_exits": len(record.get("served", [])), "gas_used": None, "tx": None}
        if settled and self.rpc_url:
            row.update(self._receipt(batch_id, [tx["hash"] for tx in record.get("txs", [])]))
        return row

    def _receipt(self, batch_id: int, hashes: list[str]) -> dict:
        """Gas used and transaction hash of the batch's mined settle transaction."""
        if batch_id not in self._gas:
            from web3 import HTTPProvider, Web3  # only with --rpc: web3 takes a second to import

            if self._w3 is None:
                self._w3 = Web3(HTTPProvider(self.rpc_url, request_kwargs={"timeout": 2}))
            for tx_hash in hashes:
                try:
                    receipt = self._w3.eth.get_transaction_receipt(tx_hash)
                except Exception:  # noqa: BLE001 - not mined, dropped or node down: try the next, later again
                    continue
                if receipt["status"] == 1:
                    self._gas[batch_id] = {"gas_used": receipt["gasUsed"], "tx": tx_hash}
                    break
        return self._gas.get(batch_id, {})


class GatewayView:
    """The gateway as the view sees it: connects with the given keys, subscribes to
    every instrument's market data, and answers ``poll()`` with the market part
    of the document. Any failure (timeout, refused snapshot) drops the connection
    and marks the gateway unreachable, with the reason, until a later poll
    reconnects."""

    def __init__(self, orders: str, market_data: str, keys: ClientKeys, pools: PoolSource) -> None:
        self.orders, self.market_data, self.keys, self.pools = orders, market_data, keys, pools
        self.context = zmq.Context()
        self.client: Client | None = None
        self.subscriber: _Subscriber | None = None
        self.infos: list = []
        self.assets: dict[int, str] = {}
        self.status_refused: str | None = None
        self.last_contact = 0.0
        self.error: str | None = "not connected yet"
        self.chains: list[dict] = []
        self.status: dict | None = None
        self.pool_rows: list[dict] | None = None
        self._next_query = 0.0

    def close(self) -> None:
        """Close the sockets and the context."""
        self._drop(None)
        self.context.term()

    def _drop(self, error: str | None) -> None:
        for sock in (self.subscriber, self.client):
            if sock is not None:
                sock.close()
        self.client = self.subscriber = None
        self.error = error

    def poll(self, timeout: float) -> dict:
        """Wait up to ``timeout`` for market data, refresh the queries once a second,
        and return the market part of the document."""
        try:
            if self.client is None:
                self.client = Client(self.orders, self.keys, timeout=QUERY_TIMEOUT, context=self.context)
                self._next_query = 0.0
            if time.monotonic() >= self._next_query:
                self._query()
            if self.subscriber is not None:
                self.subscriber.poll(timeout)
            self.client.events.clear()  # a read-only view has no use for unsolicited replies
            self.error = None
        except TimeoutError:
            self._drop(f"gateway unreachable at {self.orders}: no answer within {QUERY_TIMEOUT} s")
        except RuntimeError as err:
            self._drop(f"gateway unreachable at {self.orders}: {err}")
        return self._document()

    def _query(self) -> None:
        """Instruments (re-subscribing when the list changed), chains, status, pools."""
        reply = self.client.instruments()
        if isinstance(reply, Reject):
            raise RuntimeError(f"instruments refused: {reply.text}")
        self.last_contact = time.time()
        self.assets = {a.asset: a.symbol for a in reply.assets}
        symbols = [(i.instrument, i.symbol) for i in reply.instruments]
        if self.subscriber is None or symbols != [(i.instrument, i.symbol) for i in self.infos]:
            if self.subscriber is not None:
                self.subscriber.close()
            self.subscriber = _Subscriber(self.market_data, self.keys, self.client, dict(symbols),
                                          context=self.context)
        self.infos = reply.instruments
        self.chains = self._chains()
        self.status = self._status()
        self.pool_rows = self.pools.read(self.client)
        self._next_query = time.monotonic() + 1.0

    def _chains(self) -> list[dict]:
        by_symbol = {symbol: asset for asset, symbol in self.assets.items()}
        underlyings = sorted({by_symbol[i.base] for i in self.infos if i.strike and i.base in by_symbol})
        scales = {i.instrument: i.price_scale for i in self.infos}
        chains = []
        for asset in underlyings:
            reply = self.client.chain(asset)
            if not isinstance(reply, Reject):
                chains.append(chain_view(self.assets[asset], reply.series, scales))
        return chains

    def _status(self) -> dict | None:
        """The engine's last seq and sessions; an account key may not ask (operator
        only): asked once, then the refusal is shown."""
        if self.status_refused is not None:
            return None
        reply = self.client.status()
        if isinstance(reply, Reject):
            self.status_refused = reply.text
            return None
        return {"last_seq": reply.last_seq, "sessions": reply.sessions, "state_hash": reply.state_hash}

    def _document(self) -> dict:
        now_ns = time.time_ns()
        instruments = []
        if self.subscriber is not None:
            for info in self.infos:
                book = self.subscriber.books[info.instrument]
                bids, asks = book.depth()
                state, reference, last_trade = book.state if book.synced else (info.state, info.reference,
                                                                               info.last_trade)
                feed = InstrumentFeed(info, bids, asks, state, reference, last_trade,
                                      self.subscriber.trade_times[info.instrument],
                                      self.subscriber.reference_ts.get(info.instrument, 0), book.synced)
                instruments.append(instrument_view(feed, now_ns))
        connected = self.error is None
        return {
            "gateway": {"endpoint": self.orders, "reachable": connected, "error": self.error,
                        "last_contact": self.last_contact or None,
                        "status": self.status if connected else None,
                        "status_refused": self.status_refused},
            "instruments": instruments if connected else [],
            "chains": self.chains if connected else [],
            "pools": _pools_panel(self.pool_rows if connected else None),
        }


def _pools_panel(rows: list[dict] | None) -> dict:
    return {"message": "no pools configured" if rows is None else None, "pools": rows or []}


class Collector:
    """Polls the gateway and the settlement state on its own thread and calls
    ``publish(document)`` after each round (about every ``interval`` seconds,
    sooner when market data arrives)."""

    def __init__(self, gateway: GatewayView, settlement: SettlementBatches,
                 publish: Callable[[dict], None], interval: float = 0.25) -> None:
        self.gateway, self.settlement, self.publish, self.interval = gateway, settlement, publish, interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="web-collector", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self.thread.start()

    def stop(self) -> None:
        """Stop polling and close the gateway connection."""
        self.stop_event.set()
        self.thread.join(10)
        self.gateway.close()

    def _run(self) -> None:
        next_settlement = 0.0
        settlement = self.settlement.read()
        while not self.stop_event.is_set():
            document = self.gateway.poll(self.interval)
            if time.monotonic() >= next_settlement:
                settlement = self.settlement.read()
                next_settlement = time.monotonic() + 1.0
            self.publish({**document, "settlement": settlement, "generated": time.time()})
            if not document["gateway"]["reachable"]:
                self.stop_event.wait(1.0)  # retry a down gateway once a second, not in a busy loop
