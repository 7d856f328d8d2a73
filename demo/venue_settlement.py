"""The demo's settlement side: the deposit watcher, the exit watcher, the batch job and
the watchtower, as ``python -m settlement watch / exits / run / audit`` processes against
anvil, or, on the embedded EVM (which lives inside the demo's process), the same classes
polled by the demo itself. Either way: what was audited and how far the job has settled."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

from demo.processes import ProcessGroup
from demo.venue_chain import GUARDIAN_KEY, OPERATOR_KEY, DemoChain
from engine.client import Client
from engine.config import load_config
from engine.journal import FileJournal
from settlement.accounts import dev_private_key
from settlement.audit import Watchtower
from settlement.chain import ChainClient
from settlement.deposits import DepositWatcher
from settlement.exits import ExitQueue, ExitWatcher, GatewayFreezes
from settlement.gateway_link import GatewayDeposits, unit_table_from_config
from settlement.job import JobStore, SettlementJob
from settlement.source import JournalFillSource
from settlement.vault import revert_decoder

MAX_WAIT_S = 1.0   # a batch is cut at most this long after its first record


class Settlement(ABC):
    """What both settlement sides share: the journal read as the job reads it, the job's checkpoint."""

    def __init__(self, run: Path, config_path: Path) -> None:
        self.run = run
        self.config_path = config_path
        self.journal_path = load_config(config_path).journal_path
        self.source = JournalFillSource(FileJournal.open_reader(self.journal_path), unit_table_from_config(config_path))
        self.store = JobStore(run / "job")

    def unsettled(self) -> int:
        """Records in the journal after the job's checkpoint."""
        fills, withdrawals = self.source.read(self.store.checkpoint().last_id, 1 << 40)
        return len(fills) + len(withdrawals)

    def tick(self) -> None:
        """One poll of whatever runs in the demo's own process: nothing when the settlement side runs as
        processes."""

    @abstractmethod
    def audits(self) -> list[dict]:
        """The watchtower's verdicts so far: {"batch_id", "match", ...} per batch."""


class SettlementProcesses(Settlement):
    """``python -m settlement watch / exits / run / audit`` as children of the process group."""

    def __init__(self, run: Path, config_path: Path, group: ProcessGroup, chain: DemoChain, orders: str) -> None:
        super().__init__(run, config_path)
        self.group = group
        gateway = ["--chain", chain.url, "--config", str(config_path), "--deployment", str(run / "deployment.json"),
                   "--addressbook", str(run / "addressbook.json"), "--key-file", str(run / "keys" / "ops.key_secret"),
                   "--orders", orders, "--confirmations", "1", "--poll", "0.5"]
        group.python("deposit-watcher", ["settlement", "watch", *gateway, "--state", str(run / "watch")])
        group.python("exit-watcher", ["settlement", "exits", *gateway])
        group.python("settlement-job", [
            "settlement", "run", "--chain", chain.url, "--dev-key", str(OPERATOR_KEY),
            "--deployment", str(run / "deployment.json"), "--state", str(run / "job"),
            "--addressbook", str(run / "addressbook.json"), "--journal", str(self.journal_path),
            "--config", str(config_path), "--max-wait", str(MAX_WAIT_S), "--poll", "0.5"])
        group.python("watchtower", ["settlement", "audit", "--rpc-url", chain.url, "--vault", chain.vault.address,
                                    "--from-block", str(chain.deployment.block), "--poll", "1"])

    def audits(self) -> list[dict]:
        lines = self.group.log_path("watchtower").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


class SettlementInProcess(Settlement):
    """The same watchers, job and watchtower on the embedded EVM, polled by ``tick``."""

    def __init__(self, run: Path, config_path: Path, chain: DemoChain, ops: Client) -> None:
        super().__init__(run, config_path)
        vault, book, block = chain.vault, chain.book, chain.deployment.block
        self.deposits = DepositWatcher(vault, chain.deployment, book, GatewayDeposits(ops))
        self.exits = ExitWatcher(vault, block, book, GatewayFreezes(ops))
        operator = ChainClient(chain.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder())
        self.job = SettlementJob(self.source, operator, vault, book, run / "job", max_wait=MAX_WAIT_S,
                                 exits=ExitQueue(vault, book, block))
        guardian = ChainClient(chain.w3, dev_private_key(GUARDIAN_KEY), decoder=revert_decoder())
        self.tower = Watchtower(vault, block, guardian)
        self._audits: list[dict] = []

    def tick(self) -> None:
        self.deposits.poll()
        self.exits.poll()
        self.job.step()
        for audit in self.tower.poll():
            self._audits.append({"batch_id": audit.batch_id, "tx": audit.tx_hash, "fills": audit.fills,
                                 "match": audit.ok, "problem": audit.problem})

    def audits(self) -> list[dict]:
        return list(self._audits)
