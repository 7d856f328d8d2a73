"""numpy arrays of the core's C records, without numpy's per-call dtype work.

Building an array of a structured dtype through np.empty, or exporting one as a
typed memoryview, makes numpy parse every field (~1.5 us a call). The batch API
and the gateway's fast path instead allocate a plain byte buffer and view it
with a cached descriptor, and check an array's dtype by identity first.
"""

import numpy as np

cimport numpy as cnp

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    # Steals a reference to descr.
    object PyArray_NewFromDescr(object subtype, cnp.dtype descr, int nd, cnp.npy_intp* dims,
                                cnp.npy_intp* strides, void* data, int flags, object obj)

cdef char _EMPTY[1]


cdef cnp.ndarray new_records(cnp.dtype descr, Py_ssize_t n):
    """A new, uninitialised, C-contiguous array of n records of `descr`."""
    cdef cnp.npy_intp nbytes = n * descr.itemsize
    cdef cnp.npy_intp dims = n
    cdef cnp.ndarray buf = cnp.PyArray_EMPTY(1, &nbytes, cnp.NPY_UINT8, 0)
    cnp.Py_INCREF(descr)  # PyArray_NewFromDescr steals a reference
    cdef cnp.ndarray out = PyArray_NewFromDescr(np.ndarray, descr, 1, &dims, NULL,
                                                cnp.PyArray_DATA(buf), cnp.NPY_ARRAY_CARRAY, None)
    cnp.Py_INCREF(buf)  # PyArray_SetBaseObject steals a reference
    cnp.PyArray_SetBaseObject(out, buf)
    return out


cdef const void* record_data(object records, cnp.dtype descr, str what, Py_ssize_t* n) except NULL:
    """The records of a 1-d, C-contiguous, aligned array of `descr` (n set to their
    number); TypeError naming `what` for anything else. Never NULL, even when empty."""
    cdef cnp.ndarray arr
    if not isinstance(records, cnp.ndarray):
        raise TypeError(f"expected a numpy array of {what}")
    arr = <cnp.ndarray>records
    if arr.descr is not descr and arr.dtype != descr:
        raise TypeError(f"expected a numpy array of {what}")
    if arr.ndim != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(arr) or not cnp.PyArray_ISALIGNED(arr):
        raise TypeError(f"expected a 1-d, C-contiguous, aligned array of {what}")
    n[0] = cnp.PyArray_DIM(arr, 0)
    if n[0] == 0:
        return <const void*>_EMPTY
    return <const void*>cnp.PyArray_DATA(arr)
