/* sock_diag (NETLINK_SOCK_DIAG) and the /proc/<pid>/fd scan, for _fast_diag.pxi.
 *
 * The netlink structures are declared here with fixed-width types in their
 * kernel layout (<linux/netlink.h>, <linux/inet_diag.h>, <linux/rtnetlink.h>)
 * so that the dump decoder also builds, and can be fed captured buffers, on
 * macOS.  The calls that only Linux has fail with ENOSYS elsewhere.
 */
#ifndef SOCKDIAG_DIAG_H
#define SOCKDIAG_DIAG_H

#include "netlink.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <arpa/inet.h>

struct sd_inet_diag_sockid {
    uint16_t idiag_sport;  /* network byte order */
    uint16_t idiag_dport;
    uint32_t idiag_src[4];
    uint32_t idiag_dst[4];
    uint32_t idiag_if;
    uint32_t idiag_cookie[2];
};

struct sd_inet_diag_req_v2 {
    uint8_t sdiag_family;
    uint8_t sdiag_protocol;
    uint8_t idiag_ext;
    uint8_t pad;
    uint32_t idiag_states;
    struct sd_inet_diag_sockid id;
};

struct sd_inet_diag_msg {
    uint8_t idiag_family;
    uint8_t idiag_state;
    uint8_t idiag_timer;
    uint8_t idiag_retrans;
    struct sd_inet_diag_sockid id;
    uint32_t idiag_expires;
    uint32_t idiag_rqueue;
    uint32_t idiag_wqueue;
    uint32_t idiag_uid;
    uint32_t idiag_inode;
};

_Static_assert(sizeof(struct sd_inet_diag_req_v2) == 56, "inet_diag_req_v2 layout");
_Static_assert(sizeof(struct sd_inet_diag_msg) == 72, "inet_diag_msg layout");

enum {
    SD_LINUX_AF_INET = 2,
    SD_LINUX_AF_INET6 = 10,
    SD_SOCK_DIAG_BY_FAMILY = 20,
    SD_NETLINK_SOCK_DIAG = 4,
    SD_INET_DIAG_INFO = 2,
    SD_INET_DIAG_CONG = 4,
    SD_INET_DIAG_SKMEMINFO = 7,
};

/* The two tcp_info fields the send-buffer split needs. */
#define SD_TCPI_NOTSENT_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_notsent_bytes)
#define SD_TCPI_DELIVERY_RATE_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_delivery_rate)

/* --- the wanted inodes: an open-addressing hash set ------------------------
 * Keys are socket inodes (never 0: TIME_WAIT and request sockets, which no fd
 * holds, have inode 0 in the dump and so are never found). */

typedef struct {
    uint64_t inode;
    int32_t fd;
    int32_t seen;  /* already taken from this dump (a dump can repeat a socket) */
} sd_inode_slot;

typedef struct {
    sd_inode_slot *slots;
    size_t mask;
} sd_inode_set;

static inline size_t sd_inode_hash(uint64_t inode, size_t mask) {
    return (size_t)((inode * 0x9E3779B97F4A7C15ull) >> 17) & mask;
}

/* Room for n inodes at load <= 1/2.  0, or -1 with errno = ENOMEM. */
static inline int sd_inode_set_init(sd_inode_set *set, size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n)
        capacity <<= 1;
    set->slots = (sd_inode_slot *)calloc(capacity, sizeof(sd_inode_slot));
    set->mask = capacity - 1;
    if (set->slots == NULL) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static inline void sd_inode_set_free(sd_inode_set *set) {
    free(set->slots);
    set->slots = NULL;
}

/* The slot of inode, or NULL.  set may be NULL (nothing wanted). */
static inline sd_inode_slot *sd_inode_set_find(const sd_inode_set *set, uint64_t inode) {
    size_t i;
    if (set == NULL || inode == 0)
        return NULL;
    for (i = sd_inode_hash(inode, set->mask); set->slots[i].inode != 0; i = (i + 1) & set->mask)
        if (set->slots[i].inode == inode)
            return &set->slots[i];
    return NULL;
}

/* Adds inode -> fd unless inode is there already (the first fd is kept). */
static inline void sd_inode_set_add(sd_inode_set *set, uint64_t inode, int32_t fd) {
    size_t i;
    for (i = sd_inode_hash(inode, set->mask); set->slots[i].inode != 0; i = (i + 1) & set->mask)
        if (set->slots[i].inode == inode)
            return;
    set->slots[i].inode = inode;
    set->slots[i].fd = fd;
    set->slots[i].seen = 0;
}

static inline void sd_inode_set_clear_seen(sd_inode_set *set) {
    size_t i;
    for (i = 0; i <= set->mask; i++)
        set->slots[i].seen = 0;
}

/* --- the fd scan ------------------------------------------------------------ */

typedef struct {
    uint64_t inode;
    int32_t fd;
} sd_fd_socket;

#if defined(__linux__)

#include <linux/netlink.h>
#include <sched.h>
#include <sys/stat.h>

/* The sockets among /proc/<pid>/fd: (inode, fd) pairs in *out (malloc'd,
 * the caller frees), their number in *count.  0, or -1 with errno set:
 * ENOENT when there is no such process (or it exited during the scan),
 * EACCES when the caller may not look.  An fd closed during the scan is
 * skipped. */
static int sd_scan_socket_fds(int pid, sd_fd_socket **out, size_t *count) {
    char path[64];
    char link[64];
    DIR *dir;
    struct dirent *entry;
    sd_fd_socket *sockets = NULL, *grown;
    size_t n = 0, capacity = 0;
    ssize_t length;
    int dfd, err;

    *out = NULL;
    *count = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    dir = opendir(path);
    if (dir == NULL)
        return -1;
    dfd = dirfd(dir);
    for (;;) {
        errno = 0;
        entry = readdir(dir);
        if (entry == NULL) {
            if (errno != 0)
                goto fail;
            break;
        }
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;  /* "." and ".." */
        length = readlinkat(dfd, entry->d_name, link, sizeof(link) - 1);
        if (length < 0) {
            if (errno == ENOENT)
                continue;  /* closed since readdir listed it */
            goto fail;
        }
        if (length < 9 || memcmp(link, "socket:[", 8) != 0)
            continue;
        link[length] = '\0';
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            grown = (sd_fd_socket *)realloc(sockets, capacity * sizeof(sd_fd_socket));
            if (grown == NULL) {
                errno = ENOMEM;
                goto fail;
            }
            sockets = grown;
        }
        sockets[n].inode = strtoull(link + 8, NULL, 10);
        sockets[n].fd = (int32_t)atoi(entry->d_name);
        n++;
    }
    closedir(dir);
    *out = sockets;
    *count = n;
    return 0;

fail:
    err = errno;
    closedir(dir);
    free(sockets);
    errno = err;
    return -1;
}

/* A NETLINK_SOCK_DIAG socket that sees the sockets of pid's network
 * namespace (pid 0: the calling thread's), or -1 with errno set.  sock_diag dumps the namespace the netlink
 * socket was made in, so for a process in another namespace (a container)
 * this thread enters that namespace just for the socket() call (which needs
 * CAP_SYS_ADMIN: EPERM otherwise) and returns to its own. */
static int sd_diag_socket(int pid) {
    char path[64];
    struct stat own, theirs;
    int home, target, nl, err;
    if (pid == 0)
        return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, SD_NETLINK_SOCK_DIAG);
    snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
    if (stat(path, &theirs) != 0 || stat("/proc/thread-self/ns/net", &own) != 0)
        return -1;
    if (own.st_ino == theirs.st_ino && own.st_dev == theirs.st_dev)
        return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, SD_NETLINK_SOCK_DIAG);
    if ((target = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if ((home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        err = errno;
        close(target);
        errno = err;
        return -1;
    }
    if (setns(target, CLONE_NEWNET) != 0) {
        err = errno;
        close(target);
        close(home);
        errno = err;
        return -1;
    }
    nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, SD_NETLINK_SOCK_DIAG);
    err = errno;
    /* Going back cannot fail with the privilege that let us in; if it did,
     * the rest of the program would run in the other namespace. */
    if (setns(home, CLONE_NEWNET) != 0)
        abort();
    close(target);
    close(home);
    errno = err;
    return nl;
}

/* Sends a SOCK_DIAG_BY_FAMILY dump request for TCP sockets of family in the
 * states of the bitmask, asking for the attributes in ext.  0, or -1. */
static inline int sd_diag_request(int nl, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq) {
    struct {
        struct sd_nlmsghdr header;
        struct sd_inet_diag_req_v2 request;
    } message;
    struct sockaddr_nl kernel;
    memset(&message, 0, sizeof(message));
    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    message.header.nlmsg_len = sizeof(message);
    message.header.nlmsg_type = SD_SOCK_DIAG_BY_FAMILY;
    message.header.nlmsg_flags = SD_NLM_F_REQUEST | SD_NLM_F_DUMP;
    message.header.nlmsg_seq = seq;
    message.request.sdiag_family = family;
    message.request.sdiag_protocol = IPPROTO_TCP;
    message.request.idiag_ext = ext;
    message.request.idiag_states = states;
    if (sendto(nl, &message, sizeof(message), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -1;
    return 0;
}

#else  /* macOS: no sock_diag, and /proc does not exist */

static int sd_scan_socket_fds(int pid, sd_fd_socket **out, size_t *count) {
    (void)pid;
    *out = NULL;
    *count = 0;
    errno = ENOSYS;
    return -1;
}

static inline int sd_diag_socket(int pid) {
    (void)pid;
    errno = ENOSYS;
    return -1;
}

static inline int sd_diag_request(int nl, uint8_t family, uint32_t states, uint8_t ext, uint32_t seq) {
    (void)nl; (void)family; (void)states; (void)ext; (void)seq;
    errno = ENOSYS;
    return -1;
}

#endif

#endif /* SOCKDIAG_DIAG_H */
