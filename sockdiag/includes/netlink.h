/* Netlink framing shared by the sock_diag dumps, the destroy events and the
 * rtnetlink dump (the engine itself is _fast_netlink.pxi).
 *
 * Fixed-width copies of <linux/netlink.h> / <linux/rtnetlink.h> (a stable
 * kernel ABI), so the dump decoders also build, and can be fed captured
 * buffers, on macOS. */
#ifndef SOCKDIAG_NETLINK_H
#define SOCKDIAG_NETLINK_H

#include "compat.h"

struct sd_nlmsghdr {
    uint32_t nlmsg_len;
    uint16_t nlmsg_type;
    uint16_t nlmsg_flags;
    uint32_t nlmsg_seq;
    uint32_t nlmsg_pid;
};

struct sd_rtattr {
    uint16_t rta_len;
    uint16_t rta_type;
};

_Static_assert(sizeof(struct sd_nlmsghdr) == 16, "nlmsghdr layout");

enum {
    SD_NLMSG_HDRLEN = sizeof(struct sd_nlmsghdr),
    SD_RTA_HDRLEN = sizeof(struct sd_rtattr),
    SD_NLMSG_ERROR = 2,
    SD_NLMSG_DONE = 3,
    SD_NLM_F_REQUEST = 0x1,
    SD_NLM_F_DUMP_INTR = 0x10,
    SD_NLM_F_DUMP = 0x300,
    SD_MAX_ERRNO = 4095,  /* NLMSG_ERROR codes are 0 or -1 .. -SD_MAX_ERRNO */
};

/* NLMSG_ALIGN and RTA_ALIGN: both 4. */
#define SD_ALIGN4(len) (((len) + 3u) & ~(size_t)3u)

/* Writes at request the header of every request: length bytes in all
 * (header included), type, flags (SD_NLM_F_REQUEST, with SD_NLM_F_DUMP for a
 * dump) and seq; the port id is 0, the kernel's. */
static inline void sd_request_header(void *request, size_t length, uint16_t type, uint16_t flags,
                                     uint32_t seq) {
    struct sd_nlmsghdr header = {(uint32_t)length, type, flags, seq, 0};
    memcpy(request, &header, sizeof(header));
}

/* Attribute types carry two flag bits (NLA_F_NESTED, NLA_F_NET_BYTEORDER)
 * above the type proper. */
#define SD_NLA_TYPE_MASK 0x3fff

enum {
    SD_ATTRIBUTE = 1,          /* an attribute was found */
    SD_ATTRIBUTES_END = 0,     /* none left */
    SD_ATTRIBUTE_BAD_LENGTH = -1,  /* its length field points outside the buffer */
    SD_ATTRIBUTE_TRUNCATED = -2,   /* 1 to 3 bytes left: not even a header */
};

/* The one attribute iterator (rtattr and nlattr have the same framing): the
 * attribute at buf[*offset:length], its type (flags masked off) and payload;
 * *offset moves past it.  On an error *offset stays on the bad attribute. */
static inline int sd_attribute_next(const unsigned char *buf, size_t length, size_t *offset,
                                    uint16_t *type, const unsigned char **payload,
                                    size_t *payload_length) {
    struct sd_rtattr attribute;
    size_t step;
    if (*offset >= length)
        return SD_ATTRIBUTES_END;
    if (length - *offset < sizeof(attribute))
        return SD_ATTRIBUTE_TRUNCATED;
    memcpy(&attribute, buf + *offset, sizeof(attribute));
    if (attribute.rta_len < sizeof(attribute) || attribute.rta_len > length - *offset)
        return SD_ATTRIBUTE_BAD_LENGTH;
    *type = attribute.rta_type & SD_NLA_TYPE_MASK;
    *payload = buf + *offset + sizeof(attribute);
    *payload_length = attribute.rta_len - sizeof(attribute);
    /* The last attribute may lack its padding. */
    step = SD_ALIGN4(attribute.rta_len);
    *offset += step < length - *offset ? step : length - *offset;
    return SD_ATTRIBUTE;
}

/* The rta_len field of the attribute at offset (for error messages). */
static inline uint16_t sd_attribute_length_at(const unsigned char *buf, size_t offset) {
    uint16_t length;
    memcpy(&length, buf + offset, 2);
    return length;
}

#endif /* SOCKDIAG_NETLINK_H */
