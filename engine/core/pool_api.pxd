# The main pool's commands: POOL_DEPOSIT, POOL_REDEEM (a request, then its
# execution after the cooldown) and POOL_MARK (a NAV sample), their Python
# entry points and queries. MatchingEngine (matcher.pxd) extends this class.
from libc.stdint cimport int32_t, int64_t

from engine.core.chain cimport ChainApi
from engine.core.pool cimport Nav
from engine.core.types cimport CommandRec


cdef class PoolApi(ChainApi):
    # -- commands --
    cdef int _pool_deposit(self, const CommandRec* c) except -1
    cdef int _pool_redeem(self, const CommandRec* c) except -1
    cdef int _pool_execute(self, const CommandRec* c) except -1
    cdef int _pool_mark(self, const CommandRec* c) except -1
    cdef int _pool_check(self, const CommandRec* c, bint provider) except -1
    cdef int _pool_paid(self, const CommandRec* c, int32_t asset, int64_t qty, int64_t pps, int64_t fee,
                        int64_t request) except -1
