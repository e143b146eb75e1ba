# C types for the compiled frame taker (pure-Python mode: frames.py is unchanged as Python).
cimport cython

cdef object _new

cdef class FrameTaker:
    cdef public object ports
    cdef public bint verify
    cdef public object ip_fast, general, decoders, p_index, p_ip, p_end
    cdef public object mac_a, mac_b, link_a, link_b

    @cython.locals(ipend=Py_ssize_t, ip=Py_ssize_t, totlen=Py_ssize_t, ulen=Py_ssize_t,
                   vihl=long, frag=long, proto=long, ports=object)
    cpdef take(self, object lt, bytes buf, Py_ssize_t d, Py_ssize_t end, object frame,
               object ts, list out)
