# C types for the compiled interval set (pure-Python mode: intervals.py is unchanged as Python).
# Values stay Python ints (byte offsets may pass 2**63); the lists and the method calls are typed.
cdef class IntervalSet:
    cdef readonly list _starts, _ends
    cdef public object total

    cpdef object add(self, object start, object end)
    cpdef append_point(self, object value)
    cpdef bint add_past(self, object value) except -1
    cpdef bint contains(self, object value) except -1
