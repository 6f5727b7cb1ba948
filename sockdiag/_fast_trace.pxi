# ---------------------------------------------------------------------------
# ftrace ring-buffer pages (the connect tracer, sockdiag/tracing.py)

from .includes.trace cimport sd_trace_cursor, sd_trace_begin, sd_trace_next

cdef enum:
    TRACE_MAX_FIELDS = 16


def trace_page_events(const unsigned char[::1] page not None, tuple layout, unsigned int event_id):
    """(timestamp, field values…) of each record of one event in a ring-buffer page.

    layout: (offset, size) of the event's common_type, then of each field to
    read, from its format file; sizes 1, 2, 4 and 8 are read as unsigned
    integers, any other size as bytes.  A record shorter than the layout, or
    of another event, is passed over; a page whose framing cannot be
    trusted yields the records before that point (twin:
    sockdiag.reference.trace_page_events).
    """
    cdef Py_ssize_t nfields = len(layout), i
    cdef size_t offsets[TRACE_MAX_FIELDS]
    cdef size_t sizes[TRACE_MAX_FIELDS]
    cdef size_t needed = 0
    cdef sd_trace_cursor cursor
    cdef const uint8_t *data
    cdef size_t length
    cdef uint64_t value
    if not 1 <= nfields <= TRACE_MAX_FIELDS:
        raise ValueError(f"a layout of 1 to {TRACE_MAX_FIELDS} fields, not {nfields}")
    for i in range(nfields):
        offsets[i], sizes[i] = layout[i]
        if sizes[i] == 0 or sizes[i] > 256 or offsets[i] > 4096:
            raise ValueError(f"field {i}: offset {offsets[i]}, size {sizes[i]}")
        if offsets[i] + sizes[i] > needed:
            needed = offsets[i] + sizes[i]
    events = []
    if page.shape[0] == 0 or sd_trace_begin(&cursor, &page[0], page.shape[0]) != 0:
        return events
    while sd_trace_next(&cursor, &data, &length):
        if length < needed or sd_read_uint(data + offsets[0], <unsigned>sizes[0]) != event_id:
            continue
        record = [cursor.stamp]
        for i in range(1, nfields):
            if sizes[i] == 1 or sizes[i] == 2 or sizes[i] == 4 or sizes[i] == 8:
                record.append(sd_read_uint(data + offsets[i], <unsigned>sizes[i]))
            else:
                record.append((<const char *>data)[offsets[i]:offsets[i] + sizes[i]])
        events.append(tuple(record))
    return events
