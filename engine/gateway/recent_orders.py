"""The orders a gateway sequenced most recently, by (account, client order id):
what FindOrder answers from, so a client that resends an order after a failover
cannot have it applied twice.

A ring of the last ``capacity`` NEW_ORDER commands (account, client order id,
seq) in numpy arrays, filled per batch with array operations (no object per
order) from the batches the gateway runs, replays at recovery and follows as a
standby. ``find`` scans it (a rare query: after a reconnect).
"""

from __future__ import annotations

import numpy as np

from engine.core.types import CommandKind

DEFAULT_CAPACITY = 1 << 20


class RecentOrders:
    """The last ``capacity`` NEW_ORDER commands seen."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.accounts = np.zeros(capacity, dtype=np.int64)
        self.client_order_ids = np.zeros(capacity, dtype=np.int64)
        self.seqs = np.zeros(capacity, dtype=np.int64)  # 0: an empty slot
        self.count = 0           # orders added since the start (the ring's write position)
        self.from_seq = 0        # every order sequenced from this seq on is held (0: none seen yet)

    def add(self, commands: np.ndarray) -> None:
        """Remember the NEW_ORDER commands of a sequenced batch."""
        if self.from_seq == 0 and len(commands):
            self.from_seq = int(commands["seq"][0])
        orders = commands[commands["kind"] == CommandKind.NEW_ORDER]
        n = len(orders)
        if n == 0:
            return
        if n > self.capacity:
            orders = orders[-self.capacity:]
            n = self.capacity
        slots = (self.count + np.arange(n)) % self.capacity
        if self.count + n > self.capacity:
            # The orders overwritten now leave the window: it starts after the last of them.
            overwritten = slots[self.seqs[slots] != 0]
            if len(overwritten):
                self.from_seq = int(self.seqs[overwritten].max()) + 1
        self.accounts[slots] = orders["account"]
        self.client_order_ids[slots] = orders["client_order_id"]
        self.seqs[slots] = orders["seq"]
        self.count += n

    def find(self, account: int, client_order_id: int) -> int:
        """The seq of the account's latest held order with this client order id, or 0."""
        hits = np.flatnonzero((self.client_order_ids == client_order_id) & (self.accounts == account)
                              & (self.seqs != 0))
        return int(self.seqs[hits].max()) if len(hits) else 0
