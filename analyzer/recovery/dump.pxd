# C types for the compiled recovery (pure-Python mode: dump.py is unchanged as Python).
# The records' fields are typed slots (C attribute access on the per-event path); the
# values stay Python objects.
cimport cython
from analyzer.intervals cimport IntervalSet

cdef class DumpRecord:
    cdef public object _kinds, _limit, _limit_for, acks, claimed_end, cut_frame, anomalies
    cdef public object anomalies_dropped, client, done, duplicate_acks, end_reason, files
    cdef public object finished_frame, frames, first_frame, first_ts, herald_dir, herald_path
    cdef public object herald_payload, herald_seen, info_blocks, kdh_length_ok, kdh_raw
    cdef public object last_frame, refused_end, last_ts, messages, retransmits, server
    cdef public object server_port, session, sha256, vmcore_hash
    cdef public IntervalSet vmcore, key

    cpdef object vmcore_limit(self)


cdef class Recovery:
    cdef public object offload, capture_anomalies, capture_anomalies_dropped, max_dump_size
    cdef public object on_data, on_start, on_end, on_anomaly, frames
    cdef public dict records

    @cython.locals(rec=DumpRecord, run_rec=DumpRecord, parts=list)
    cpdef handle(self, object events)
    cpdef _apply_run(self, DumpRecord rec, object start, object end, object n, list parts,
                     object last)
    cpdef object _refusal(self, DumpRecord rec, object offset, object n)
    cpdef _take(self, DumpRecord rec, object ev, object start, object data)
    cpdef _message(self, DumpRecord rec, object ev)
