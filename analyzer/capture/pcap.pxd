# C types for the compiled pcap record loop (pure-Python mode: pcap.py is unchanged as Python).
# Lengths and positions fit Py_ssize_t; times are at most 2**32 * 10**9 + 2**32 * 1000 < 2**63.
cimport cython

@cython.locals(hlen=Py_ssize_t, n=Py_ssize_t, d=Py_ssize_t, end=Py_ssize_t,
               caplen=Py_ssize_t, frac_mul=cython.longlong, snaplen=Py_ssize_t,
               known=bint, frame=cython.longlong, ts=cython.longlong)
cpdef Py_ssize_t _records(object self, object buf, Py_ssize_t pos, list out) except? -1
