"""Collateral transfers between shards (docs/sharding.md): each shard's engine
keeps, per peer shard, the last transfer number it sent and received, so that a
transfer applies exactly once on each side and transfers between two shards
apply in order; and the last transfer it sent to each peer, so that an operator
tool finishing a crashed transfer credits exactly what was debited.

A transfer id names its route: ``src << 48 | dst << 40 | number`` with
``src != dst`` below MAX_SHARDS and ``1 <= number < 2**40``.
"""

import numpy as np

from engine.core.types cimport INVALID_TRANSFER, TRANSFER_DUPLICATE, TRANSFER_GAP

cdef int64_t _MAX_NUMBER = (<int64_t>1) << TRANSFER_DST_SHIFT
TRANSFER_MAX_SHARDS = MAX_SHARDS


def transfer_id(int64_t src, int64_t dst, int64_t number):
    """The id of transfer ``number`` from shard ``src`` to shard ``dst``; ValueError if invalid."""
    if not (0 <= src < MAX_SHARDS and 0 <= dst < MAX_SHARDS and src != dst and 0 < number < _MAX_NUMBER):
        raise ValueError(f"no transfer id for shards {src} -> {dst}, number {number}")
    return src << TRANSFER_SRC_SHIFT | dst << TRANSFER_DST_SHIFT | number


def transfer_route(int64_t tid):
    """(source shard, destination shard, number) of a transfer id; ValueError if it is not one."""
    cdef int64_t src, dst, number
    if not _split(tid, &src, &dst, &number):
        raise ValueError(f"{tid} is not a transfer id")
    return src, dst, number


cdef inline bint _split(int64_t tid, int64_t* src, int64_t* dst, int64_t* number) noexcept:
    if tid <= 0:
        return False
    src[0] = tid >> TRANSFER_SRC_SHIFT
    dst[0] = (tid >> TRANSFER_DST_SHIFT) & 0xFF
    number[0] = tid & (_MAX_NUMBER - 1)
    return src[0] < MAX_SHARDS and dst[0] < MAX_SHARDS and src[0] != dst[0] and number[0] > 0


cdef class Transfers:
    """Per peer shard: transfer numbers sent and received, and the last one sent."""

    # -- commands --

    cdef uint8_t check(self, bint out, int64_t transfer_id) noexcept:
        """0 if ``transfer_id`` is the next transfer out to (or in from) its peer,
        else why not (duplicate, gap, not a transfer id)."""
        cdef int64_t src, dst, number, last
        if not _split(transfer_id, &src, &dst, &number):
            return INVALID_TRANSFER
        last = self.out_last[dst] if out else self.in_last[src]
        if number <= last:
            return TRANSFER_DUPLICATE
        if number != last + 1:
            return TRANSFER_GAP
        return 0

    cdef void record(self, bint out, int64_t transfer_id, int64_t account, int32_t asset, int64_t qty) noexcept:
        """Count a checked transfer as applied (and remember it, if sent)."""
        cdef int64_t src = 0, dst = 0, number = 0
        _split(transfer_id, &src, &dst, &number)
        self.used = True
        if out:
            self.out_last[dst] = number
            self.out_account[dst] = account
            self.out_asset[dst] = asset
            self.out_qty[dst] = qty
        else:
            self.in_last[src] = number

    def state(self):
        """(out_last, in_last, [(account, asset, qty) of the last transfer sent] ...),
        each a list over the MAX_SHARDS peer shards."""
        return ([self.out_last[i] for i in range(MAX_SHARDS)], [self.in_last[i] for i in range(MAX_SHARDS)],
                [(self.out_account[i], self.out_asset[i], self.out_qty[i]) for i in range(MAX_SHARDS)])

    # -- state --

    cdef bytes write_part(self):
        """int64 [5, MAX_SHARDS]: out_last, in_last, out account, asset, qty; b"" if unused."""
        if not self.used:
            return b""
        out_last, in_last, sent = self.state()
        rows = np.array([out_last, in_last, *zip(*sent)], dtype=np.int64)
        return rows.tobytes()

    cdef int read_part(self, bytes data) except -1:
        cdef int i
        if not data:
            return 0
        if len(data) != 5 * MAX_SHARDS * 8:
            raise ValueError(f"snapshot transfers section of {len(data)} bytes, expected {5 * MAX_SHARDS * 8}")
        rows = np.frombuffer(data, dtype=np.int64).reshape(5, MAX_SHARDS)
        if (rows[:2] < 0).any() or (rows[:2] >= _MAX_NUMBER).any() or (rows[4] < 0).any():
            raise ValueError("snapshot transfers section holds a negative or oversized value")
        for i in range(MAX_SHARDS):
            self.out_last[i] = rows[0, i]
            self.in_last[i] = rows[1, i]
            self.out_account[i] = rows[2, i]
            self.out_asset[i] = rows[3, i]
            self.out_qty[i] = rows[4, i]
        self.used = True
        return 0

    cdef int hash_words(self, list words) except -1:
        # Only when used: an engine that never transferred hashes as before.
        if self.used:
            words.extend(np.frombuffer(self.write_part(), dtype=np.int64).tolist())
        return 0
