# C types for the compiled session (pure-Python mode: session.py is unchanged as Python).
from analyzer.intervals cimport IntervalSet

cdef class Session:
    cdef public object id, client, ip, key, link, mac, twin, server, server_port
    cdef public object state, finished_seqno, capture_duplicates, last_ts, horizon
    cdef public dict moves, recent, recent_acks
    cdef public IntervalSet sent, acked
    cdef public set ports_seen

    cpdef enter(self, object state)
    cpdef prune(self, object seqno)
