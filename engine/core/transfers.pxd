# Collateral moved between shards: per peer shard, the last transfer number sent
# and received, and the last transfer sent (so a crashed transfer can be finished).
from libc.stdint cimport int32_t, int64_t, uint8_t

cdef enum:
    MAX_SHARDS = 16            # engine/shards.py MAX_SHARDS
    TRANSFER_SRC_SHIFT = 48    # transfer id = src << 48 | dst << 40 | number
    TRANSFER_DST_SHIFT = 40


cdef class Transfers:
    cdef int64_t out_last[MAX_SHARDS]      # [destination shard]: last number sent
    cdef int64_t in_last[MAX_SHARDS]       # [source shard]: last number received
    cdef int64_t out_account[MAX_SHARDS]   # [destination shard]: the last transfer sent
    cdef int32_t out_asset[MAX_SHARDS]
    cdef int64_t out_qty[MAX_SHARDS]
    cdef readonly bint used                # any transfer applied (its state is hashed and snapshotted)

    # -- commands --
    cdef uint8_t check(self, bint out, int64_t transfer_id) noexcept
    cdef void record(self, bint out, int64_t transfer_id, int64_t account, int32_t asset, int64_t qty) noexcept

    # -- state --
    cdef bytes write_part(self)
    cdef int read_part(self, bytes data) except -1
    cdef int hash_words(self, list words) except -1
