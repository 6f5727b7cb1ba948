/* Netlink framing shared by the sock_diag and rtnetlink dumps.
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

struct sd_nlmsgerr {
    int32_t error;  /* negative errno, 0 for an acknowledgement */
    struct sd_nlmsghdr msg;
};

struct sd_rtattr {
    uint16_t rta_len;
    uint16_t rta_type;
};

_Static_assert(sizeof(struct sd_nlmsghdr) == 16, "nlmsghdr layout");

enum {
    SD_NLMSG_HDRLEN = sizeof(struct sd_nlmsghdr),
    SD_RTA_HDRLEN = sizeof(struct sd_rtattr),
    SD_NLMSG_NOOP = 1,
    SD_NLMSG_ERROR = 2,
    SD_NLMSG_DONE = 3,
    SD_NLM_F_REQUEST = 0x1,
    SD_NLM_F_DUMP_INTR = 0x10,
    SD_NLM_F_DUMP = 0x300,
};

/* NLMSG_ALIGN and RTA_ALIGN: both 4. */
#define SD_ALIGN4(len) (((len) + 3u) & ~(size_t)3u)

/* The next netlink message in buf[*offset:length]: 1 and its type, flags and
 * payload; 0 at the end; -1 if the header lies about its length. */
static inline int sd_nl_next(const unsigned char *buf, size_t length, size_t *offset,
                             uint16_t *type, uint16_t *flags,
                             const unsigned char **payload, size_t *payload_length) {
    struct sd_nlmsghdr h;
    if (*offset >= length)
        return 0;
    if (length - *offset < sizeof(h))
        return -1;
    memcpy(&h, buf + *offset, sizeof(h));
    if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > length - *offset)
        return -1;
    *type = h.nlmsg_type;
    *flags = h.nlmsg_flags;
    *payload = buf + *offset + sizeof(h);
    *payload_length = h.nlmsg_len - sizeof(h);
    *offset += SD_ALIGN4(h.nlmsg_len) < length - *offset ? SD_ALIGN4(h.nlmsg_len) : length - *offset;
    return 1;
}

#endif /* SOCKDIAG_NETLINK_H */
