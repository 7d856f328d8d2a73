# The engine's state as a whole: a snapshot, its restore, the state hash and
# the integrity check, each put together from the parts' own writers and readers.
from libc.stdint cimport int32_t, int64_t

from engine.core.book cimport Books
from engine.core.funding cimport Funding
from engine.core.instrument cimport Instrument
from engine.core.margin cimport Margin
from engine.core.pool cimport MainPool
from engine.core.risk cimport Risk
from engine.core.types cimport oid_t
from engine.core.waterfall cimport Waterfall


# The parts of one engine, as state.pyx reads and writes them.
ctypedef struct Parts:
    Instrument* insts
    int32_t n_inst
    oid_t next_order_id
    int64_t last_seq
    int64_t max_accounts
    bint risk


# -- queries --
cdef bytes write_snapshot(const Parts* parts, Books books, Risk risk, Margin margin, Funding funding,
                          MainPool pool, Waterfall losses, list assets, list instruments)
cdef str state_hash(const Parts* parts, Books books, Risk risk, Margin margin, Funding funding, MainPool pool,
                    Waterfall losses, list assets, list instruments)
cdef int check_integrity(const Parts* parts, Books books, Risk risk, Funding funding, MainPool pool,
                         Waterfall losses) except -1

# -- commands (restore: decode, then hand each part its fields) --
cdef object decode_snapshot(data)
cdef int read_snapshot(snap, Parts* parts, Books books, Risk risk, Margin margin, Funding funding,
                       MainPool pool, Waterfall losses) except -1
