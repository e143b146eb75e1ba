# C types for the compiled protocol core (pure-Python mode: core.py is unchanged as Python).
# Sessions, their interval sets and the notice attribution are typed (C attribute access);
# values from the wire stay Python ints.
cimport cython
from analyzer.intervals cimport IntervalSet
from analyzer.protocol.notices cimport Attribution
from analyzer.protocol.session cimport Session

cdef object _HDR, _ACK, _new, _HERALD, _FINISHED, CLIENT_PORT, HERALD_PORT, DATASIZE
cdef object Datagram, Message, Ack, FINISHING
cdef Py_ssize_t _HDR_SIZE, S_ACKED, S_FIRST, S_FRAME, S_PAYLOAD, S_TS, WINDOW

cdef class NetdumpTracker:
    cdef public object table
    cdef public dict sessions, twins
    cdef public Attribution notes

    cpdef list feed(self, object item)
    @cython.locals(notes=Attribution)
    cpdef list feed_many(self, object items)
    cpdef list close(self)
    cpdef _over(self, Session s, object frame, list events)

    @cython.locals(s=Session, notes=Attribution, recent=dict, prev=list, conflict=bint)
    cpdef _client_datagram(self, object d, object frame, object ts, object src, object dport,
                          object payload, object missing, object link, object bad, list events)

    @cython.locals(s=Session, notes=Attribution, acked=IntervalSet, sent=list, twins=list,
                   new=bint)
    cpdef _server_datagram(self, object d, object frame, object ts, object dst, object sport,
                          object payload, object missing, object link, object bad, list events)
