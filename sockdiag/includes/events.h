/* sock_diag for per-process accounting: a counters-only dump of every TCP
 * socket, the socket-destroy multicast groups (as `ss -E` uses) and a scan of
 * /proc/<pid>/fd links.
 *
 * The netlink message layouts are declared here (they are stable kernel ABI)
 * rather than taken from <linux/inet_diag.h>, so the decoder below also runs
 * on macOS for offline buffers.  The calls that only Linux has fail with
 * ENOSYS elsewhere.
 */
#ifndef SOCKDIAG_EVENTS_H
#define SOCKDIAG_EVENTS_H

#include "compat.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#if SD_LINUX
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#else
#define SO_RCVBUFFORCE SO_RCVBUF
#endif

#define SD_NLMSG_ERROR 2
#define SD_NLMSG_DONE 3
#define SD_NLM_F_DUMP_INTR 0x10
#define SD_SOCK_DIAG_BY_FAMILY 20
#define SD_INET_DIAG_INFO 2
#define SD_TCP_LISTEN 10
/* enum sknetlink_groups in <linux/sock_diag.h> */
#define SD_SKNLGRP_INET_TCP_DESTROY 1
#define SD_SKNLGRP_INET6_TCP_DESTROY 3
/* A tcp_info counter the kernel did not return (older kernel). */
#define SD_COUNTER_ABSENT UINT64_MAX

struct sd_nlmsghdr {
    uint32_t len;
    uint16_t type;
    uint16_t flags;
    uint32_t seq;
    uint32_t pid;
};

/* struct inet_diag_msg (72 bytes): ports and addresses in network order. */
struct sd_inet_diag_msg {
    uint8_t  family;
    uint8_t  state;
    uint8_t  timer;
    uint8_t  retrans;
    uint16_t sport;
    uint16_t dport;
    uint8_t  src[16];
    uint8_t  dst[16];
    uint32_t ifindex;
    uint32_t cookie[2];
    uint32_t expires;
    uint32_t rqueue;
    uint32_t wqueue;
    uint32_t uid;
    uint32_t inode;
};

_Static_assert(sizeof(struct sd_inet_diag_msg) == 72, "inet_diag_msg layout");

/* One socket as accounting needs it. */
typedef struct {
    uint64_t cookie;
    uint64_t inode;
    uint64_t bytes_sent;
    uint64_t bytes_acked;
    uint64_t bytes_received;
    uint64_t bytes_retrans;
    uint8_t  family;
    uint8_t  state;
    uint16_t local_port;
    uint16_t remote_port;
    uint8_t  local_address[16];
    uint8_t  remote_address[16];
    const unsigned char *info;  /* the INET_DIAG_INFO payload, or NULL */
    uint32_t info_length;
} sd_tcp_counters;

#define SD_ALIGN4(n) (((n) + 3u) & ~3u)

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
    if (h.len < sizeof(h) || h.len > length - *offset)
        return -1;
    *type = h.type;
    *flags = h.flags;
    *payload = buf + *offset + sizeof(h);
    *payload_length = h.len - sizeof(h);
    *offset += SD_ALIGN4(h.len) < length - *offset ? SD_ALIGN4(h.len) : length - *offset;
    return 1;
}

static inline uint64_t sd_info_counter(const unsigned char *info, uint32_t length, size_t offset) {
    if (info == NULL || offset + 8 > length)
        return SD_COUNTER_ABSENT;
    return sd_read_uint(info + offset, 8);
}

/* Decode one SOCK_DIAG_BY_FAMILY message payload (an inet_diag_msg and its
 * attributes).  0 on success, -1 when it is truncated or malformed. */
static inline int sd_diag_parse(const unsigned char *payload, size_t length, sd_tcp_counters *out) {
    struct sd_inet_diag_msg msg;
    size_t offset = SD_ALIGN4(sizeof(msg));
    uint16_t attr_length, attr_type;
    if (length < sizeof(msg))
        return -1;
    memcpy(&msg, payload, sizeof(msg));
    memset(out, 0, sizeof(*out));
    out->family = msg.family;
    out->state = msg.state;
    out->local_port = (uint16_t)((payload[4] << 8) | payload[5]);
    out->remote_port = (uint16_t)((payload[6] << 8) | payload[7]);
    memcpy(out->local_address, msg.src, 16);
    memcpy(out->remote_address, msg.dst, 16);
    out->cookie = (uint64_t)msg.cookie[0] | ((uint64_t)msg.cookie[1] << 32);
    out->inode = msg.inode;
    while (offset + 4 <= length) {
        memcpy(&attr_length, payload + offset, 2);
        memcpy(&attr_type, payload + offset + 2, 2);
        if (attr_length < 4 || attr_length > length - offset)
            return -1;
        if ((attr_type & 0x3fff) == SD_INET_DIAG_INFO) {
            out->info = payload + offset + 4;
            out->info_length = attr_length - 4u;
        }
        offset += SD_ALIGN4(attr_length);
    }
    out->bytes_sent = sd_info_counter(out->info, out->info_length,
                                      offsetof(struct sd_linux_tcp_info, tcpi_bytes_sent));
    out->bytes_acked = sd_info_counter(out->info, out->info_length,
                                       offsetof(struct sd_linux_tcp_info, tcpi_bytes_acked));
    out->bytes_received = sd_info_counter(out->info, out->info_length,
                                          offsetof(struct sd_linux_tcp_info, tcpi_bytes_received));
    out->bytes_retrans = sd_info_counter(out->info, out->info_length,
                                         offsetof(struct sd_linux_tcp_info, tcpi_bytes_retrans));
    return 0;
}

#if SD_LINUX

static inline int sd_diag_socket(void) {
    return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
}

/* Join both TCP destroy groups; needs CAP_NET_ADMIN (EPERM otherwise).
 * Binding also gives the socket a port id: the kernel skips unbound
 * sockets (port id 0, its own) when it broadcasts. */
static inline int sd_diag_subscribe_destroy(int fd) {
    struct sockaddr_nl local = {.nl_family = AF_NETLINK};
    local.nl_groups = (1u << (SD_SKNLGRP_INET_TCP_DESTROY - 1)) |
                      (1u << (SD_SKNLGRP_INET6_TCP_DESTROY - 1));
    return bind(fd, (struct sockaddr *)&local, sizeof(local));
}

/* Ask for a dump of the family's TCP sockets in the states bitmask, with tcp_info. */
static inline int sd_diag_request_tcp(int fd, int family, uint32_t states, uint32_t seq) {
    struct {
        struct nlmsghdr nlh;
        struct sd_inet_diag_req_v2 {
            uint8_t family, protocol, ext, pad;
            uint32_t states;
            uint8_t id[48];
        } req;
    } msg;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SD_SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.nlh.nlmsg_seq = seq;
    msg.req.family = (uint8_t)family;
    msg.req.protocol = IPPROTO_TCP;
    msg.req.ext = 1u << (SD_INET_DIAG_INFO - 1);
    msg.req.states = states;
    return sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ? -1 : 0;
}

#else  /* the netlink calls exist on Linux only */

static inline int sd_diag_socket(void) { errno = ENOSYS; return -1; }
static inline int sd_diag_subscribe_destroy(int fd) { (void)fd; errno = ENOSYS; return -1; }
static inline int sd_diag_request_tcp(int fd, int family, uint32_t states, uint32_t seq) {
    (void)fd; (void)family; (void)states; (void)seq; errno = ENOSYS; return -1;
}

#endif

/* The inode of an fd link target "socket:[12345]", or 0 if it is no socket. */
static inline uint64_t sd_socket_link_inode(const char *target, ssize_t length) {
    uint64_t inode = 0;
    ssize_t i = 8;
    if (length < 10 || memcmp(target, "socket:[", 8) != 0)
        return 0;
    for (; i < length && target[i] >= '0' && target[i] <= '9'; i++)
        inode = inode * 10 + (uint64_t)(target[i] - '0');
    return (i < length && target[i] == ']') ? inode : 0;
}

/* The pid named by a /proc entry, or 0 if the name is not all digits. */
static inline long sd_pid_of_name(const char *name) {
    long pid = 0;
    if (*name == '\0')
        return 0;
    for (; *name; name++) {
        if (*name < '0' || *name > '9')
            return 0;
        pid = pid * 10 + (*name - '0');
    }
    return pid;
}

static inline const char *sd_dirent_name(struct dirent *entry) { return entry->d_name; }

#endif /* SOCKDIAG_EVENTS_H */
