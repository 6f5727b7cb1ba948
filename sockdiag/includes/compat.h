/* The one place where sockdiag chooses its platform: no other header and
 * no .pyx/.pxi has an #ifdef.
 *
 * _fast.pyx is compiled from a single generated C file everywhere; it
 * branches on SD_LINUX / SD_DARWIN (plain constants), and every call that
 * exists on only one platform has a stub here on the other one that fails
 * with ENOSYS.  Kernel structs are declared here in their newest layout so
 * that decoding does not depend on the age of the build machine's headers.
 */
#ifndef SOCKDIAG_COMPAT_H
#define SOCKDIAG_COMPAT_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <net/if.h>

/* Linux's struct tcp_info as of 6.18 (280 bytes), from <linux/tcp.h>.
 * Declared here, not included, because glibc and distro uapi headers lag the
 * running kernel.  Plain fixed-width types so the same decoder also runs on
 * macOS for offline buffers. */
struct sd_linux_tcp_info {
    uint8_t  tcpi_state;
    uint8_t  tcpi_ca_state;
    uint8_t  tcpi_retransmits;
    uint8_t  tcpi_probes;
    uint8_t  tcpi_backoff;
    uint8_t  tcpi_options;
    uint8_t  tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
    uint8_t  tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;
    uint32_t tcpi_rto;
    uint32_t tcpi_ato;
    uint32_t tcpi_snd_mss;
    uint32_t tcpi_rcv_mss;
    uint32_t tcpi_unacked;
    uint32_t tcpi_sacked;
    uint32_t tcpi_lost;
    uint32_t tcpi_retrans;
    uint32_t tcpi_fackets;
    uint32_t tcpi_last_data_sent;
    uint32_t tcpi_last_ack_sent;
    uint32_t tcpi_last_data_recv;
    uint32_t tcpi_last_ack_recv;
    uint32_t tcpi_pmtu;
    uint32_t tcpi_rcv_ssthresh;
    uint32_t tcpi_rtt;
    uint32_t tcpi_rttvar;
    uint32_t tcpi_snd_ssthresh;
    uint32_t tcpi_snd_cwnd;
    uint32_t tcpi_advmss;
    uint32_t tcpi_reordering;
    uint32_t tcpi_rcv_rtt;
    uint32_t tcpi_rcv_space;
    uint32_t tcpi_total_retrans;
    uint64_t tcpi_pacing_rate;
    uint64_t tcpi_max_pacing_rate;
    uint64_t tcpi_bytes_acked;
    uint64_t tcpi_bytes_received;
    uint32_t tcpi_segs_out;
    uint32_t tcpi_segs_in;
    uint32_t tcpi_notsent_bytes;
    uint32_t tcpi_min_rtt;
    uint32_t tcpi_data_segs_in;
    uint32_t tcpi_data_segs_out;
    uint64_t tcpi_delivery_rate;
    uint64_t tcpi_busy_time;
    uint64_t tcpi_rwnd_limited;
    uint64_t tcpi_sndbuf_limited;
    uint32_t tcpi_delivered;
    uint32_t tcpi_delivered_ce;
    uint64_t tcpi_bytes_sent;
    uint64_t tcpi_bytes_retrans;
    uint32_t tcpi_dsack_dups;
    uint32_t tcpi_reord_seen;
    uint32_t tcpi_rcv_ooopack;
    uint32_t tcpi_snd_wnd;
    uint32_t tcpi_rcv_wnd;
    uint32_t tcpi_rehash;
    uint16_t tcpi_total_rto;
    uint16_t tcpi_total_rto_recoveries;
    uint32_t tcpi_total_rto_time;
    uint32_t tcpi_received_ce;
    uint32_t tcpi_delivered_e1_bytes;
    uint32_t tcpi_delivered_e0_bytes;
    uint32_t tcpi_delivered_ce_bytes;
    uint32_t tcpi_received_e1_bytes;
    uint32_t tcpi_received_e0_bytes;
    uint32_t tcpi_received_ce_bytes;
    uint16_t tcpi_accecn_fail_mode;
    uint16_t tcpi_accecn_opt_seen;
};

_Static_assert(sizeof(struct sd_linux_tcp_info) == 280, "tcp_info layout");

/* Decode helpers: the compiler, not hand shifting, places the bit-fields. */
static inline uint8_t sd_tcpi_snd_wscale(const struct sd_linux_tcp_info *t) { return t->tcpi_snd_wscale; }
static inline uint8_t sd_tcpi_rcv_wscale(const struct sd_linux_tcp_info *t) { return t->tcpi_rcv_wscale; }
static inline uint8_t sd_tcpi_app_limited(const struct sd_linux_tcp_info *t) { return t->tcpi_delivery_rate_app_limited; }
static inline uint8_t sd_tcpi_fastopen_client_fail(const struct sd_linux_tcp_info *t) { return t->tcpi_fastopen_client_fail; }

/* The whole-byte fields of struct sd_linux_tcp_info, in order, with the name
 * of the TcpInfo attribute each becomes.  The first eight bytes (u8 fields and
 * bit-fields) are decoded separately.  A field is present when the kernel's
 * returned length covers all of it. */
enum { SD_FIELD_PLAIN = 0, SD_FIELD_RATE = 1 /* bytes/s, becomes bits/s */ };

typedef struct {
    const char *name;
    uint16_t offset;
    uint8_t size;
    uint8_t kind;
} sd_field;

#define SD_TCPI(member, name, kind)                                     \
    { name, offsetof(struct sd_linux_tcp_info, member),                 \
      sizeof(((struct sd_linux_tcp_info *)0)->member), kind }

static const sd_field sd_linux_tcp_info_fields[] = {
    SD_TCPI(tcpi_rto, "rto_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_ato, "ato_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_snd_mss, "snd_mss", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_mss, "rcv_mss", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_unacked, "unacked_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_sacked, "sacked_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_lost, "lost_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_retrans, "retrans_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_fackets, "fackets", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_last_data_sent, "last_data_sent_ms", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_last_ack_sent, "last_ack_sent_ms", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_last_data_recv, "last_data_recv_ms", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_last_ack_recv, "last_ack_recv_ms", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_pmtu, "pmtu", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_ssthresh, "rcv_ssthresh", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rtt, "rtt_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rttvar, "rttvar_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_snd_ssthresh, "snd_ssthresh_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_snd_cwnd, "snd_cwnd_segs", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_advmss, "advmss", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_reordering, "reordering", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_rtt, "rcv_rtt_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_space, "rcv_space", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_total_retrans, "total_retrans", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_pacing_rate, "pacing_rate_bps", SD_FIELD_RATE),
    SD_TCPI(tcpi_max_pacing_rate, "max_pacing_rate_bps", SD_FIELD_RATE),
    SD_TCPI(tcpi_bytes_acked, "bytes_acked", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_bytes_received, "bytes_received", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_segs_out, "segs_out", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_segs_in, "segs_in", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_notsent_bytes, "notsent_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_min_rtt, "min_rtt_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_data_segs_in, "data_segs_in", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_data_segs_out, "data_segs_out", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivery_rate, "delivery_rate_bps", SD_FIELD_RATE),
    SD_TCPI(tcpi_busy_time, "busy_time_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rwnd_limited, "rwnd_limited_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_sndbuf_limited, "sndbuf_limited_us", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivered, "delivered", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivered_ce, "delivered_ce", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_bytes_sent, "bytes_sent", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_bytes_retrans, "bytes_retrans", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_dsack_dups, "dsack_dups", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_reord_seen, "reord_seen", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_ooopack, "rcv_ooopack", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_snd_wnd, "snd_wnd", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rcv_wnd, "rcv_wnd", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_rehash, "rehash", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_total_rto, "total_rto", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_total_rto_recoveries, "total_rto_recoveries", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_total_rto_time, "total_rto_time_ms", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_received_ce, "received_ce", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivered_e1_bytes, "delivered_e1_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivered_e0_bytes, "delivered_e0_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_delivered_ce_bytes, "delivered_ce_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_received_e1_bytes, "received_e1_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_received_e0_bytes, "received_e0_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_received_ce_bytes, "received_ce_bytes", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_accecn_fail_mode, "accecn_fail_mode", SD_FIELD_PLAIN),
    SD_TCPI(tcpi_accecn_opt_seen, "accecn_opt_seen", SD_FIELD_PLAIN),
};

#define SD_LINUX_TCP_INFO_NFIELDS \
    (sizeof(sd_linux_tcp_info_fields) / sizeof(sd_linux_tcp_info_fields[0]))

/* The tcp_info bytes decoded at most: SIZE_MAX, or the length an older kernel
 * returns when sockdiag is told to assume one (SOCKDIAG_ASSUME_KERNEL): the
 * fields past it are then absent, as on that kernel. */
static size_t sd_tcp_info_length_limit = SIZE_MAX;

static inline size_t sd_tcp_info_length(size_t length) {
    return length < sd_tcp_info_length_limit ? length : sd_tcp_info_length_limit;
}

/* Read an n-byte unsigned field (n = 1, 2, 4 or 8) in host order at any
 * alignment: the kernel fills tcp_info in the host's byte order. */
static inline uint64_t sd_read_uint(const unsigned char *p, unsigned n) {
    uint8_t v1; uint16_t v2; uint32_t v4; uint64_t v8;
    switch (n) {
    case 1: memcpy(&v1, p, 1); return v1;
    case 2: memcpy(&v2, p, 2); return v2;
    case 4: memcpy(&v4, p, 4); return v4;
    default: memcpy(&v8, p, 8); return v8;
    }
}

/* Linux's struct sk_meminfo indices (SO_MEMINFO, INET_DIAG_SKMEMINFO). */
enum {
    SD_MEMINFO_RMEM_ALLOC = 0,
    SD_MEMINFO_RCVBUF,
    SD_MEMINFO_WMEM_ALLOC,
    SD_MEMINFO_SNDBUF,
    SD_MEMINFO_FWD_ALLOC,
    SD_MEMINFO_WMEM_QUEUED,
    SD_MEMINFO_OPTMEM,
    SD_MEMINFO_BACKLOG,
    SD_MEMINFO_DROPS,
    SD_MEMINFO_VARS
};

/* Why a socket's bytes wait, and how long, from one tcp_info (docs/queue-delay.md).
 * The values index sockdiag._common.LIMITS and QUEUE_DELAY_BASES, whose
 * pure-Python twin (_common.snapshot_drain) the tests hold this to. */
enum {
    SD_LIMIT_UNKNOWN = 0, SD_LIMIT_APPLICATION, SD_LIMIT_RECEIVER, SD_LIMIT_NETWORK,
    SD_LIMIT_SENDER_BUFFER,
};
enum {
    SD_BASIS_UNKNOWN = 0, SD_BASIS_EMPTY, SD_BASIS_DELIVERY_RATE, SD_BASIS_ACKED_RATE,
    SD_BASIS_NO_TCP_INFO, SD_BASIS_RECEIVER_LIMITED, SD_BASIS_SENDER_LIMITED,
    SD_BASIS_APP_LIMITED_RATE, SD_BASIS_NO_RATE, SD_BASIS_STALLED,
};
#define SD_INFO_ABSENT UINT64_MAX
/* Lifetime share of busy time (1/SD_LIMITED_SHARE) spent receiver- or
 * sender-limited above which one snapshot's delivery rate is not trusted. */
#define SD_LIMITED_SHARE 10

typedef struct {
    double queue_delay_s;  /* NAN: unknown */
    int limited_by;        /* SD_LIMIT_* */
    int basis;             /* SD_BASIS_* */
} sd_drain;

static inline uint64_t sd_info_field(const unsigned char *info, size_t length, size_t offset, unsigned size) {
    if (info == NULL || offset + size > length)
        return SD_INFO_ABSENT;
    return sd_read_uint(info + offset, size);
}
#define SD_INFO(field) sd_info_field(info, info_length, offsetof(struct sd_linux_tcp_info, field), \
                                     sizeof(((struct sd_linux_tcp_info *)0)->field))

/* tcpi_delivery_rate_app_limited, a bit-field of the first eight bytes
 * (copied out: info need not be aligned for the struct). */
static inline int sd_app_limited(const unsigned char *info) {
    struct sd_linux_tcp_info head;
    memcpy(&head, info, 8);
    return head.tcpi_delivery_rate_app_limited;
}

/* unsent and unacked in bytes; free SD_INFO_ABSENT when unknown; info the
 * kernel's tcp_info (NULL: none) of info_length bytes. */
static inline sd_drain sd_snapshot_drain(uint64_t unsent, uint64_t unacked, uint64_t free,
                                         const unsigned char *info, size_t info_length) {
    sd_drain out = {NAN, SD_LIMIT_UNKNOWN, SD_BASIS_UNKNOWN};
    uint64_t probes, snd_wnd, mss, unacked_segs, cwnd, busy, rwnd_limited, sndbuf_limited, rate;
    if (unsent == 0) {
        /* Everything written is in flight: a full buffer blocks the writer. */
        out.limited_by = free == 0 ? SD_LIMIT_SENDER_BUFFER : SD_LIMIT_APPLICATION;
        out.queue_delay_s = 0.0;
        out.basis = SD_BASIS_EMPTY;
        return out;
    }
    if (info == NULL || info_length < 8) {
        out.basis = SD_BASIS_NO_TCP_INFO;
        return out;
    }
    probes = info[offsetof(struct sd_linux_tcp_info, tcpi_probes)];
    snd_wnd = SD_INFO(tcpi_snd_wnd);
    mss = SD_INFO(tcpi_snd_mss);
    unacked_segs = SD_INFO(tcpi_unacked);
    cwnd = SD_INFO(tcpi_snd_cwnd);
    /* Zero-window probes, or no room in the peer's window for one more segment. */
    if (probes > 0 || (snd_wnd != SD_INFO_ABSENT && mss != SD_INFO_ABSENT && snd_wnd < unacked + mss))
        out.limited_by = SD_LIMIT_RECEIVER;
    else if (cwnd != SD_INFO_ABSENT && unacked_segs != SD_INFO_ABSENT && cwnd > 0 && unacked_segs >= cwnd)
        out.limited_by = SD_LIMIT_NETWORK;
    busy = SD_INFO(tcpi_busy_time);
    rwnd_limited = SD_INFO(tcpi_rwnd_limited);
    sndbuf_limited = SD_INFO(tcpi_sndbuf_limited);
    rate = SD_INFO(tcpi_delivery_rate);
    if (out.limited_by == SD_LIMIT_RECEIVER
            || (busy != SD_INFO_ABSENT && busy > 0 && rwnd_limited * SD_LIMITED_SHARE >= busy))
        out.basis = SD_BASIS_RECEIVER_LIMITED;
    else if (busy != SD_INFO_ABSENT && busy > 0 && sndbuf_limited * SD_LIMITED_SHARE >= busy)
        out.basis = SD_BASIS_SENDER_LIMITED;
    else if (sd_app_limited(info))
        out.basis = SD_BASIS_APP_LIMITED_RATE;
    else if (rate == SD_INFO_ABSENT || rate == 0)
        out.basis = SD_BASIS_NO_RATE;
    else {
        out.queue_delay_s = (double)unsent / (double)rate;
        out.basis = SD_BASIS_DELIVERY_RATE;
    }
    return out;
}

/* Datagrams sd_receive_datagrams takes at most in one call. */
enum { SD_RECEIVE_MAX = 64 };

/* The calls that exist on one platform only.  Each has a stub on the other
 * one that fails with ENOSYS (or -ENOSYS where the real call returns
 * -errno), so that the code calling them needs no #ifdef. */
#if defined(__linux__)
#define SD_LINUX 1
#define SD_DARWIN 0
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <linux/netlink.h>
#include <sched.h>
#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif
#ifndef TCP_NOTSENT_LOWAT
#define TCP_NOTSENT_LOWAT 25
#endif
#define SD_TCP_INFO_OPT 11
#define SD_SO_NWRITE (-1)
#define SD_SO_NREAD (-1)
#define SD_TCP_CONNECTION_INFO (-1)

/* A netlink socket of protocol (NETLINK_ROUTE, NETLINK_SOCK_DIAG), or -1. */
static inline int sd_netlink_socket(int protocol) {
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
}

/* Sends a request to the kernel; 0, or -1 with errno set. */
static inline int sd_netlink_send(int fd, const void *request, size_t length) {
    struct sockaddr_nl kernel;
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    return sendto(fd, request, length, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ? -1 : 0;
}

/* Receives the datagrams waiting on fd, up to count (at most
 * SD_RECEIVE_MAX), waiting for the first one only (recvmmsg): datagram i
 * goes to buf + i * slot, its length to lengths[i], or SIZE_MAX when it was
 * longer than slot (cut).  How many were received, or -1 with errno set. */
static inline int sd_receive_datagrams(int fd, unsigned char *buf, size_t slot, unsigned count,
                                       size_t *lengths) {
    struct mmsghdr messages[SD_RECEIVE_MAX];
    struct iovec vectors[SD_RECEIVE_MAX];
    unsigned i;
    int received;
    if (count > SD_RECEIVE_MAX)
        count = SD_RECEIVE_MAX;
    memset(messages, 0, count * sizeof(messages[0]));
    for (i = 0; i < count; i++) {
        vectors[i].iov_base = buf + i * slot;
        vectors[i].iov_len = slot;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    received = recvmmsg(fd, messages, count, MSG_WAITFORONE, NULL);
    for (i = 0; received > 0 && i < (unsigned)received; i++)
        lengths[i] = messages[i].msg_hdr.msg_flags & MSG_TRUNC ? SIZE_MAX : messages[i].msg_len;
    return received;
}

/* Joins the multicast groups of the bitmask.  Binding also gives the socket
 * a port id: the kernel skips unbound sockets (port id 0, its own) when it
 * broadcasts. */
static inline int sd_netlink_join(int fd, uint32_t groups) {
    struct sockaddr_nl local;
    memset(&local, 0, sizeof(local));
    local.nl_family = AF_NETLINK;
    local.nl_groups = groups;
    return bind(fd, (struct sockaddr *)&local, sizeof(local));
}

/* Moves the calling thread into the network namespace of ns_fd. */
static inline int sd_enter_net_namespace(int ns_fd) { return setns(ns_fd, CLONE_NEWNET); }

/* The name (NUL-terminated), flags and MTU of the link of index in the
 * network namespace of fd, any socket (the interface ioctls are the device
 * layer's, a netlink socket serves).  0, or -1 with errno (ENODEV: no such
 * link, it went away). */
static inline int sd_link_identity(int fd, int index, char name[IFNAMSIZ], unsigned *flags,
                                   unsigned *mtu) {
    struct ifreq request;
    memset(&request, 0, sizeof(request));
    request.ifr_ifindex = index;
    if (ioctl(fd, SIOCGIFNAME, &request) != 0)
        return -1;
    memcpy(name, request.ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = 0;
    if (ioctl(fd, SIOCGIFFLAGS, &request) != 0)
        return -1;
    *flags = (unsigned short)request.ifr_flags;
    if (ioctl(fd, SIOCGIFMTU, &request) != 0)
        return -1;
    *mtu = (unsigned)request.ifr_mtu;
    return 0;
}

/* macOS only: sysctl and libproc. */
static inline int sd_sysctl(int *mib, unsigned int n, void *old, size_t *oldlen) {
    (void)mib; (void)n; (void)old; (void)oldlen;
    errno = ENOSYS;
    return -1;
}
static inline int sd_proc_pidinfo(int pid, int flavor, uint64_t arg, void *buf, int size) {
    (void)pid; (void)flavor; (void)arg; (void)buf; (void)size;
    return -ENOSYS;
}
static inline int sd_proc_pidfdinfo(int pid, int fd, int flavor, void *buf, int size) {
    (void)pid; (void)fd; (void)flavor; (void)buf; (void)size;
    return -ENOSYS;
}

#elif defined(__APPLE__)
#define SD_LINUX 0
#define SD_DARWIN 1
#include <netinet/tcp.h>
#include <sys/sysctl.h>
#include <libproc.h>
#define SIOCOUTQ (-1)
#define SIOCOUTQNSD (-1)
#define SO_MEMINFO (-1)
#define SO_DOMAIN (-1)
#define SO_PROTOCOL (-1)
#define SO_RCVBUFFORCE SO_RCVBUF
/* Private on macOS: see shared/reference/macos-abi.md, section 3. */
#define SD_TCP_INFO_OPT 0x200
#define SD_SO_NWRITE 0x1024
#define SD_SO_NREAD 0x1020
#define SIOCINQ (-1)
#define SD_TCP_CONNECTION_INFO 0x106
#ifndef TCP_NOTSENT_LOWAT
#define TCP_NOTSENT_LOWAT 0x201
#endif

static inline int sd_netlink_socket(int protocol) { (void)protocol; errno = ENOSYS; return -1; }
static inline int sd_netlink_send(int fd, const void *request, size_t length) {
    (void)fd; (void)request; (void)length;
    errno = ENOSYS;
    return -1;
}
static inline int sd_netlink_join(int fd, uint32_t groups) { (void)fd; (void)groups; errno = ENOSYS; return -1; }
static inline int sd_receive_datagrams(int fd, unsigned char *buf, size_t slot, unsigned count,
                                       size_t *lengths) {
    (void)fd; (void)buf; (void)slot; (void)count; (void)lengths;
    errno = ENOSYS;
    return -1;
}
static inline int sd_enter_net_namespace(int ns_fd) { (void)ns_fd; errno = ENOSYS; return -1; }
static inline int sd_link_identity(int fd, int index, char name[IFNAMSIZ], unsigned *flags,
                                   unsigned *mtu) {
    (void)fd; (void)index; (void)name; (void)flags; (void)mtu;
    errno = ENOSYS;
    return -1;
}

static inline int sd_sysctl(int *mib, unsigned int n, void *old, size_t *oldlen) {
    return sysctl(mib, n, old, oldlen, NULL, 0);
}
/* libproc returns the bytes written, or 0 with errno set (0 with errno 0 is
 * an empty answer).  These return the bytes written or -errno. */
static inline int sd_proc_pidinfo(int pid, int flavor, uint64_t arg, void *buf, int size) {
    errno = 0;
    int written = proc_pidinfo(pid, flavor, arg, buf, size);
    return written <= 0 && errno ? -errno : written;
}
static inline int sd_proc_pidfdinfo(int pid, int fd, int flavor, void *buf, int size) {
    errno = 0;
    int written = proc_pidfdinfo(pid, fd, flavor, buf, size);
    return written <= 0 && errno ? -errno : written;
}

#else
#error "sockdiag supports Linux and macOS"
#endif


#endif /* SOCKDIAG_COMPAT_H */
