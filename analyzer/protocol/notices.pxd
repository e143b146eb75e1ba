# C types for the compiled notice attribution (pure-Python mode: notices.py is unchanged).
cdef class Attribution:
    cdef public object last_frame, last_sid, cut_frame
    cdef public list pending

    cpdef list notice(self, object n, object table)
    cpdef flush(self, object frame, list events)
    cpdef taken(self, object frame, object sid, list events)
