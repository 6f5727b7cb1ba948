# C declarations only: the rtnetlink link dump (includes/rtnl.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t


cdef extern from "includes/rtnl.h" nogil:
    struct sd_ifinfomsg:
        int32_t ifi_index
        uint32_t ifi_flags

    size_t SD_IFINFOMSG_LEN
    int SD_RTM_NEWLINK
    int SD_IFLA_IFNAME
    int SD_IFLA_MTU
    int SD_IFLA_STATS64
    int SD_IFF_UP

    const char *const sd_link_stats64_names[]
    int SD_LINK_STATS64_NFIELDS
    int SD_LINK_STATS64_MIN_FIELDS
    int SD_STATS_RX_PACKETS
    int SD_STATS_TX_PACKETS
    int SD_STATS_RX_BYTES
    int SD_STATS_TX_BYTES
    int SD_STATS_RX_ERRORS
    int SD_STATS_TX_ERRORS
    int SD_STATS_RX_DROPPED
    int SD_STATS_TX_DROPPED
    int sd_link_stats64_read(const unsigned char *p, size_t length, uint64_t *out)

    int SD_NETLINK_ROUTE
    struct sd_getlink_request:
        pass
    void sd_rtnl_getlink_request(sd_getlink_request *request)

    struct sd_if_stats_msg:
        uint32_t ifindex
    size_t SD_IF_STATS_MSG_LEN
    int SD_RTM_NEWSTATS
    int SD_IFLA_STATS_LINK_64
    struct sd_getstats_request:
        pass
    void sd_rtnl_getstats_request(sd_getstats_request *request)

    int IFNAMSIZ
    int sd_link_identity(int fd, int index, char *name, unsigned *flags, unsigned *mtu)
