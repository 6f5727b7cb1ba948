/* rtnetlink link dump: the wire structs, the stats64 field table and the
 * request.
 *
 * The structs are declared here with fixed-width types (their layout is a
 * stable kernel ABI) so that the dump decoder also runs on macOS for offline
 * buffers.  The netlink socket calls are compat.h's (ENOSYS off Linux).
 */
#ifndef SOCKDIAG_RTNL_H
#define SOCKDIAG_RTNL_H

#include "netlink.h"

/* <linux/rtnetlink.h>, <linux/if_link.h>, <net/if.h> */
struct sd_ifinfomsg {
    uint8_t  ifi_family;
    uint8_t  ifi_pad;
    uint16_t ifi_type;
    int32_t  ifi_index;
    uint32_t ifi_flags;
    uint32_t ifi_change;
};

enum {
    SD_IFINFOMSG_LEN = sizeof(struct sd_ifinfomsg),
    SD_RTM_NEWLINK = 16,
    SD_RTM_GETLINK = 18,
    SD_NETLINK_ROUTE = 0,
    SD_IFLA_IFNAME = 3,
    SD_IFLA_MTU = 4,
    SD_IFLA_STATS64 = 23,
    SD_IFF_UP = 0x1,
};

/* struct rtnl_link_stats64 as of Linux 6.18 (200 bytes).  The first 23
 * fields (184 bytes) date from 2.6.35 and every kernel since sends them;
 * rx_nohandler came in 4.6 and rx_otherhost_dropped in 5.19. */
static const char *const sd_link_stats64_names[] = {
    "rx_packets", "tx_packets", "rx_bytes", "tx_bytes",
    "rx_errors", "tx_errors", "rx_dropped", "tx_dropped",
    "multicast", "collisions",
    "rx_length_errors", "rx_over_errors", "rx_crc_errors",
    "rx_frame_errors", "rx_fifo_errors", "rx_missed_errors",
    "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
    "tx_heartbeat_errors", "tx_window_errors",
    "rx_compressed", "tx_compressed",
    "rx_nohandler", "rx_otherhost_dropped",
};

enum {
    SD_LINK_STATS64_NFIELDS = sizeof(sd_link_stats64_names) / sizeof(sd_link_stats64_names[0]),
    SD_LINK_STATS64_MIN_FIELDS = 23,
    SD_STATS_RX_PACKETS = 0, SD_STATS_TX_PACKETS, SD_STATS_RX_BYTES, SD_STATS_TX_BYTES,
    SD_STATS_RX_ERRORS, SD_STATS_TX_ERRORS, SD_STATS_RX_DROPPED, SD_STATS_TX_DROPPED,
};

/* The whole u64 fields in an attribute payload of len bytes, copied to out
 * (host byte order, any alignment).  Returns how many were present, or -1
 * when the payload is shorter than any kernel's struct. */
static inline int sd_link_stats64_read(const unsigned char *p, size_t len,
                                       uint64_t out[SD_LINK_STATS64_NFIELDS]) {
    size_t n = len / sizeof(uint64_t);
    if (n < SD_LINK_STATS64_MIN_FIELDS)
        return -1;
    if (n > SD_LINK_STATS64_NFIELDS)
        n = SD_LINK_STATS64_NFIELDS;
    memcpy(out, p, n * sizeof(uint64_t));
    return (int)n;
}

/* RTM_GETSTATS (Linux 4.7): struct if_stats_msg, then the attributes of
 * filter_mask; only IFLA_STATS_LINK_64 (a struct rtnl_link_stats64) is
 * asked for.  A fifth of the kernel's work of a link dump, which also
 * fills every link's configuration. */
struct sd_if_stats_msg {
    uint8_t  family;
    uint8_t  pad1;
    uint16_t pad2;
    uint32_t ifindex;
    uint32_t filter_mask;
};

enum {
    SD_IF_STATS_MSG_LEN = sizeof(struct sd_if_stats_msg),
    SD_RTM_NEWSTATS = 92,
    SD_RTM_GETSTATS = 94,
    SD_IFLA_STATS_LINK_64 = 1,
};

struct sd_getstats_request {
    struct sd_nlmsghdr header;
    struct sd_if_stats_msg body;
};

static inline void sd_rtnl_getstats_request(struct sd_getstats_request *request) {
    memset(request, 0, sizeof(*request));
    sd_request_header(request, sizeof(*request), SD_RTM_GETSTATS, SD_NLM_F_REQUEST | SD_NLM_F_DUMP, 0);
    request->body.filter_mask = 1u << (SD_IFLA_STATS_LINK_64 - 1);
}

/* The RTM_GETLINK dump request for every link. */
struct sd_getlink_request {
    struct sd_nlmsghdr header;
    struct sd_ifinfomsg body;
};

static inline void sd_rtnl_getlink_request(struct sd_getlink_request *request) {
    memset(request, 0, sizeof(*request));
    sd_request_header(request, sizeof(*request), SD_RTM_GETLINK, SD_NLM_F_REQUEST | SD_NLM_F_DUMP, 0);
    request->body.ifi_family = AF_UNSPEC;
}

#endif /* SOCKDIAG_RTNL_H */
