/* sock_diag for per-process accounting (_fast_events.pxi): the counters of
 * one inet_diag message, and the socket-destroy multicast groups (as `ss -E`
 * uses).  The message layouts, the dump request and the fd scan are those of
 * netlink.h and diag.h.  The decoder also runs on macOS for offline buffers;
 * the subscription fails with ENOSYS there.
 */
#ifndef SOCKDIAG_EVENTS_H
#define SOCKDIAG_EVENTS_H

#include "diag.h"

#if !SD_LINUX
#define SO_RCVBUFFORCE SO_RCVBUF
#endif

/* enum sknetlink_groups in <linux/sock_diag.h> */
#define SD_SKNLGRP_INET_TCP_DESTROY 1
#define SD_SKNLGRP_INET6_TCP_DESTROY 3
/* A tcp_info counter the kernel did not return (older kernel). */
#define SD_COUNTER_ABSENT UINT64_MAX

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
    out->family = msg.idiag_family;
    out->state = msg.idiag_state;
    out->local_port = (uint16_t)((payload[4] << 8) | payload[5]);  /* network order */
    out->remote_port = (uint16_t)((payload[6] << 8) | payload[7]);
    memcpy(out->local_address, msg.id.idiag_src, 16);
    memcpy(out->remote_address, msg.id.idiag_dst, 16);
    out->cookie = (uint64_t)msg.id.idiag_cookie[0] | ((uint64_t)msg.id.idiag_cookie[1] << 32);
    out->inode = msg.idiag_inode;
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

/* Join both TCP destroy groups.  Binding also gives the socket a port id:
 * the kernel skips unbound sockets (port id 0, its own) when it broadcasts. */
static inline int sd_diag_subscribe_destroy(int fd) {
    struct sockaddr_nl local;
    memset(&local, 0, sizeof(local));
    local.nl_family = AF_NETLINK;
    local.nl_groups = (1u << (SD_SKNLGRP_INET_TCP_DESTROY - 1)) |
                      (1u << (SD_SKNLGRP_INET6_TCP_DESTROY - 1));
    return bind(fd, (struct sockaddr *)&local, sizeof(local));
}

#else  /* the netlink groups exist on Linux only */

static inline int sd_diag_subscribe_destroy(int fd) { (void)fd; errno = ENOSYS; return -1; }

#endif

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
