# The engine's entry points: a Python method per command kind, the batch API
# over numpy records, and the event buffer both return. MatchingEngine
# (matcher.pxd) extends this class and implements execute.
from libc.stdint cimport int64_t, uint8_t

from engine.core.parts cimport EngineParts
from engine.core.types cimport CommandRec, EventRec


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
