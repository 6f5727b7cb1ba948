/* The ftrace ring buffer's page format (include/linux/ring_buffer.h,
 * events/header_page): a page header (u64 timestamp, local_t commit whose low
 * 30 bits are the data length), then events each led by a 32-bit word whose
 * low five bits are type_len and the rest a time delta.  Data records have
 * type_len 1..28 (type_len * 4 bytes of data) or 0 (the length in the next
 * word, counting that word); 29 is padding, 30 a time extend, 31 an absolute
 * time stamp.  Every read is bounded by the page's length. */
#ifndef SOCKDIAG_TRACE_H
#define SOCKDIAG_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SD_TRACE_PAGE_HEADER 16
#define SD_TRACE_COMMIT_MASK ((1ULL << 30) - 1)
#define SD_TRACE_PADDING 29
#define SD_TRACE_TIME_EXTEND 30
#define SD_TRACE_TIME_STAMP 31

typedef struct {
    const uint8_t *page;
    size_t end;
    size_t offset;
    uint64_t stamp;
} sd_trace_cursor;

static inline uint32_t sd_trace_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* 0 when the page has a header to start from, -1 when it is too short. */
static inline int sd_trace_begin(sd_trace_cursor *c, const uint8_t *page, size_t length)
{
    uint64_t stamp, commit;
    if (length < SD_TRACE_PAGE_HEADER)
        return -1;
    memcpy(&stamp, page, 8);
    memcpy(&commit, page + 8, 8);
    c->page = page;
    c->stamp = stamp;
    c->offset = SD_TRACE_PAGE_HEADER;
    commit &= SD_TRACE_COMMIT_MASK;
    c->end = commit < length - SD_TRACE_PAGE_HEADER ? SD_TRACE_PAGE_HEADER + commit : length;
    return 0;
}

/* The next data record (1, with *data and *length set and the cursor's stamp
 * its time) or the end of what can be trusted (0). */
static inline int sd_trace_next(sd_trace_cursor *c, const uint8_t **data, size_t *length)
{
    while (c->offset + 4 <= c->end) {
        uint32_t header = sd_trace_u32(c->page + c->offset);
        uint32_t type_len = header & 31, delta = header >> 5;
        size_t start, following;
        if (type_len == 0 || type_len == SD_TRACE_PADDING) {
            uint32_t counted;
            if (c->offset + 8 > c->end)
                return 0;
            if (type_len == SD_TRACE_PADDING && delta == 0)
                return 0; /* the rest of the page is padding */
            counted = sd_trace_u32(c->page + c->offset + 4);
            if (counted < 4)
                return 0;
            start = c->offset + 8;
            following = c->offset + 4 + (size_t)counted;
        } else if (type_len <= 28) {
            start = c->offset + 4;
            following = start + 4 * (size_t)type_len;
        } else {
            uint64_t value;
            if (c->offset + 8 > c->end)
                return 0;
            value = ((uint64_t)sd_trace_u32(c->page + c->offset + 4) << 27) | delta;
            if (type_len == SD_TRACE_TIME_EXTEND)
                c->stamp += value;
            else
                c->stamp = (c->stamp & ~((1ULL << 59) - 1)) | value;
            c->offset += 8;
            continue;
        }
        if (following > c->end)
            return 0;
        c->stamp += delta;
        c->offset = following;
        if (type_len == SD_TRACE_PADDING)
            continue;
        *data = c->page + start;
        *length = following - start;
        return 1;
    }
    return 0;
}

#endif
