# numpy arrays of the core's C records (CommandRec, EventRec), built and read
# through the numpy C API with a cached descriptor.
cimport numpy as cnp

cdef cnp.ndarray new_records(cnp.dtype descr, Py_ssize_t n)
cdef const void* record_data(object records, cnp.dtype descr, str what, Py_ssize_t* n) except NULL
