# The main pool's commands: POOL_DEPOSIT_REQUEST (a deposit request, executed
# after the deposit cooldown), POOL_DEPOSIT (the immediate deposit of older
# journals), POOL_REDEEM (a redemption request, or the execution of a due
# request of either kind), POOL_CANCEL and POOL_MARK (a NAV sample), their
# Python entry points and queries. MatchingEngine (matcher.pxd) extends this class.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.chain cimport ChainApi
from engine.core.pool cimport Nav
from engine.core.types cimport CommandRec


cdef class PoolApi(ChainApi):
    # -- commands --
    cdef int _pool_deposit(self, const CommandRec* c) except -1
    cdef int _pool_redeem(self, const CommandRec* c) except -1
    cdef int _pool_execute(self, const CommandRec* c) except -1
    cdef int _pool_deposit_request(self, const CommandRec* c) except -1
    cdef int _pool_execute_deposit(self, const CommandRec* c) except -1
    cdef int _pool_cancel(self, const CommandRec* c) except -1
    cdef int _pool_release(self, int64_t account) except -1
    cdef uint8_t _mint_terms(self, int64_t amount, int64_t* pps, int64_t* shares) except 255
    cdef int _pool_mark(self, const CommandRec* c) except -1
    cdef int _pool_check(self, const CommandRec* c, bint provider) except -1
    cdef int _deposit_check(self, const CommandRec* c) except -1
    cdef int _pool_paid(self, const CommandRec* c, int32_t asset, int64_t qty, int64_t pps, int64_t fee,
                        int64_t request) except -1
    cdef int _pool_request_event(self, uint8_t kind, int64_t rid, int64_t account, int32_t asset, int64_t qty,
                                 int64_t leaves) except -1
