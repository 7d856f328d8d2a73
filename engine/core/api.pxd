# The engine's entry points: a Python method per command kind, the batch API
# over numpy records, and the event buffer both return. MatchingEngine
# (matcher.pxd) extends this class and implements execute.
from libc.stdint cimport int64_t, uint8_t
from libc.string cimport memset

from engine.core.parts cimport EngineParts
from engine.core.types cimport CommandRec, EventRec


# -- building a command (the per-command methods here and in chain.pyx) --

cdef inline CommandRec _command(uint8_t kind, int64_t seq, int64_t ts) noexcept:
    cdef CommandRec c
    memset(&c, 0, sizeof(CommandRec))
    c.kind = kind
    c.seq = seq
    c.ts = ts
    return c


cdef inline uint8_t _clip_u8(int64_t value) noexcept:
    # Out-of-range enum arguments from Python become 255, invalid for every enum.
    return <uint8_t>value if 0 <= value <= 254 else 255


cdef class CommandApi(EngineParts):
    # events of the command (per-command API) or batch (batch API) in progress
    cdef EventRec* ev
    cdef Py_ssize_t ev_n
    cdef Py_ssize_t ev_cap
    cdef int64_t cur_seq          # stamped on every event (execute sets both)
    cdef int64_t cur_ts

    # -- commands --
    cdef list _run_one(self, const CommandRec* c)
    cdef int execute(self, const CommandRec* c) except -1      # MatchingEngine's

    # -- events --
    cdef EventRec* _emit(self, uint8_t kind) except NULL
