# C declarations only: the ftrace ring buffer's page format (includes/trace.h),
# for the connect tracer's decoder in _fast_trace.pxi.
from libc.stdint cimport uint8_t, uint64_t


cdef extern from "includes/trace.h" nogil:
    ctypedef struct sd_trace_cursor:
        uint64_t stamp

    int sd_trace_begin(sd_trace_cursor *cursor, const uint8_t *page, size_t length)
    int sd_trace_next(sd_trace_cursor *cursor, const uint8_t **data, size_t *length)
