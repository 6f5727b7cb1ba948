/* sock_diag (NETLINK_SOCK_DIAG): its messages, the one inet_diag_msg parser,
 * the dump request, and the /proc/<pid>/fd scan; for _fast_diag.pxi and
 * _fast_events.pxi.
 *
 * The structures are declared with fixed-width types in their kernel layout
 * (<linux/inet_diag.h>) so that the decoder also builds, and can be fed
 * captured buffers, on macOS.  The Linux-only calls come from compat.h.
 */
#ifndef SOCKDIAG_DIAG_H
#define SOCKDIAG_DIAG_H

#include "netlink.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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
    SD_INET_DIAG_REQ_BYTECODE = 1,
    SD_INET_DIAG_INFO = 2,
    SD_INET_DIAG_CONG = 4,
    SD_INET_DIAG_SKMEMINFO = 7,
    SD_TCP_LISTEN = 10,
    /* enum sknetlink_groups in <linux/sock_diag.h> */
    SD_SKNLGRP_INET_TCP_DESTROY = 1,
    SD_SKNLGRP_INET6_TCP_DESTROY = 3,
};

/* The tcp_info fields read outside the TcpInfo decoder. */
#define SD_TCPI_NOTSENT_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_notsent_bytes)
#define SD_TCPI_DELIVERY_RATE_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_delivery_rate)
#define SD_TCPI_BYTES_SENT_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_bytes_sent)
#define SD_TCPI_BYTES_ACKED_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_bytes_acked)
#define SD_TCPI_BYTES_RECEIVED_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_bytes_received)
#define SD_TCPI_BYTES_RETRANS_OFFSET offsetof(struct sd_linux_tcp_info, tcpi_bytes_retrans)
/* A tcp_info field the kernel did not return (an older kernel, or no INET_DIAG_INFO). */
#define SD_FIELD_ABSENT UINT64_MAX

/* --- the one inet_diag_msg parser --------------------------------------------
 * Socket structs, accounting and destroy events all read a message through
 * it.  Attribute payloads point into the message. */

typedef struct {
    struct sd_inet_diag_msg msg;
    const unsigned char *info;     /* INET_DIAG_INFO: struct tcp_info, or NULL */
    size_t info_length;
    const unsigned char *meminfo;  /* INET_DIAG_SKMEMINFO: u32 sk_meminfo[], or NULL */
    size_t meminfo_length;
    const unsigned char *cong;     /* INET_DIAG_CONG: the algorithm's name, or NULL */
    size_t cong_length;
    size_t attribute_offset;       /* on SD_ATTRIBUTE_*: where the bad attribute starts */
} sd_diag_message;

enum {
    SD_DIAG_OK = 0,
    SD_DIAG_SHORT = -10,        /* shorter than struct inet_diag_msg */
    SD_DIAG_FAMILY = -11,       /* neither AF_INET nor AF_INET6 */
    /* or SD_ATTRIBUTE_BAD_LENGTH / SD_ATTRIBUTE_TRUNCATED */
};

static inline int sd_diag_parse(const unsigned char *payload, size_t length, sd_diag_message *out) {
    size_t offset = SD_ALIGN4(sizeof(struct sd_inet_diag_msg)), payload_length;
    const unsigned char *attribute;
    uint16_t type;
    int status;
    memset(out, 0, sizeof(*out));
    if (length < sizeof(struct sd_inet_diag_msg))
        return SD_DIAG_SHORT;
    memcpy(&out->msg, payload, sizeof(out->msg));
    if (out->msg.idiag_family != SD_LINUX_AF_INET && out->msg.idiag_family != SD_LINUX_AF_INET6)
        return SD_DIAG_FAMILY;
    while ((status = sd_attribute_next(payload, length, &offset, &type, &attribute, &payload_length)) == SD_ATTRIBUTE) {
        if (type == SD_INET_DIAG_INFO) {
            out->info = attribute;
            out->info_length = sd_tcp_info_length(payload_length);
        } else if (type == SD_INET_DIAG_SKMEMINFO) {
            out->meminfo = attribute;
            out->meminfo_length = payload_length;
        } else if (type == SD_INET_DIAG_CONG) {
            out->cong = attribute;
            out->cong_length = payload_length;
        }
    }
    out->attribute_offset = offset;
    return status;
}

/* Where the inode stands in a message at least sizeof(struct sd_inet_diag_msg)
 * long: read (4 bytes, sd_read_uint) to skip unwanted sockets unparsed. */
#define SD_DIAG_INODE_OFFSET offsetof(struct sd_inet_diag_msg, idiag_inode)

/* A tcp_info field (host byte order) of size bytes at offset, or SD_FIELD_ABSENT. */
static inline uint64_t sd_diag_info_field(const sd_diag_message *m, size_t offset, unsigned size) {
    if (m->info == NULL || offset + size > m->info_length)
        return SD_FIELD_ABSENT;
    return sd_read_uint(m->info + offset, size);
}

/* An sk_meminfo value (SD_MEMINFO_*) of an INET_DIAG_SKMEMINFO or
 * UNIX_DIAG_MEMINFO payload (NULL: none), or SD_FIELD_ABSENT. */
static inline uint64_t sd_meminfo_value(const unsigned char *meminfo, size_t length, size_t index) {
    if (meminfo == NULL || (index + 1) * 4 > length)
        return SD_FIELD_ABSENT;
    return sd_read_uint(meminfo + index * 4, 4);
}

static inline uint64_t sd_diag_meminfo(const sd_diag_message *m, size_t index) {
    return sd_meminfo_value(m->meminfo, m->meminfo_length, index);
}

static inline uint64_t sd_diag_cookie(const sd_diag_message *m) {
    return (uint64_t)m->msg.id.idiag_cookie[0] | ((uint64_t)m->msg.id.idiag_cookie[1] << 32);
}

/* --- the dump request ----------------------------------------------------------
 * SOCK_DIAG_BY_FAMILY for the sockets of protocol (IPPROTO_TCP or
 * IPPROTO_UDP) and family in the states of the
 * bitmask, asking for the attributes in ext, with the kernel filter
 * (inet_diag bytecode, as `ss` compiles it) when bytecode_length > 0.
 * Written to request (room for SD_DIAG_REQUEST_SIZE(bytecode_length)); its length. */

#define SD_DIAG_REQUEST_SIZE(bytecode_length) \
    (sizeof(struct sd_nlmsghdr) + sizeof(struct sd_inet_diag_req_v2) + sizeof(struct sd_rtattr) + SD_ALIGN4(bytecode_length))

static inline size_t sd_diag_request(unsigned char *request, uint8_t family, uint8_t protocol, uint32_t states,
                                     uint8_t ext, const unsigned char *bytecode, size_t bytecode_length) {
    struct sd_inet_diag_req_v2 body;
    struct sd_rtattr filter;
    size_t length = SD_NLMSG_HDRLEN + sizeof(body);
    memset(&body, 0, sizeof(body));
    body.sdiag_family = family;
    body.sdiag_protocol = protocol;
    body.idiag_ext = ext;
    body.idiag_states = states;
    if (bytecode_length > 0) {
        filter.rta_len = (uint16_t)(sizeof(filter) + bytecode_length);
        filter.rta_type = SD_INET_DIAG_REQ_BYTECODE;
        memset(request + length, 0, sizeof(filter) + SD_ALIGN4(bytecode_length));
        memcpy(request + length, &filter, sizeof(filter));
        memcpy(request + length + sizeof(filter), bytecode, bytecode_length);
        length += sizeof(filter) + SD_ALIGN4(bytecode_length);
    }
    sd_request_header(request, length, SD_SOCK_DIAG_BY_FAMILY, SD_NLM_F_REQUEST | SD_NLM_F_DUMP, 0);
    memcpy(request + SD_NLMSG_HDRLEN, &body, sizeof(body));
    return length;
}

/* --- an exact request --------------------------------------------------------
 * SOCK_DIAG_BY_FAMILY without NLM_F_DUMP names one socket: the kernel looks
 * its tuple up in the socket hash tables (no walk) and checks the cookie, and
 * answers with the socket's message, or NLMSG_ERROR ENOENT (nothing by that
 * tuple) or ESTALE (another socket now holds it).  name is the family byte
 * and the inet_diag_sockid of an earlier message (SD_DIAG_NAME_SIZE bytes,
 * as sd_diag_name copies them).  Written to request (SD_DIAG_EXACT_REQUEST_SIZE bytes). */

#define SD_DIAG_NAME_SIZE (1 + sizeof(struct sd_inet_diag_sockid))
enum { SD_DIAG_NAME_MAX = 64 };  /* room for a name on the stack */
_Static_assert(SD_DIAG_NAME_SIZE <= SD_DIAG_NAME_MAX, "name size");
#define SD_DIAG_EXACT_REQUEST_SIZE (sizeof(struct sd_nlmsghdr) + sizeof(struct sd_inet_diag_req_v2))

static inline void sd_diag_name(const unsigned char *payload, unsigned char *name) {
    name[0] = payload[offsetof(struct sd_inet_diag_msg, idiag_family)];
    memcpy(name + 1, payload + offsetof(struct sd_inet_diag_msg, id), sizeof(struct sd_inet_diag_sockid));
}

static inline void sd_diag_exact_request(unsigned char *request, const unsigned char *name, uint8_t ext,
                                         uint32_t seq) {
    struct sd_inet_diag_req_v2 body;
    memset(&body, 0, sizeof(body));
    body.sdiag_family = name[0];
    body.sdiag_protocol = IPPROTO_TCP;
    body.idiag_ext = ext;
    body.idiag_states = UINT32_MAX;
    memcpy(&body.id, name + 1, sizeof(body.id));
    sd_request_header(request, SD_DIAG_EXACT_REQUEST_SIZE, SD_SOCK_DIAG_BY_FAMILY, SD_NLM_F_REQUEST, seq);
    memcpy(request + SD_NLMSG_HDRLEN, &body, sizeof(body));
}

/* --- UNIX sockets (unix_diag) ------------------------------------------------
 * The same SOCK_DIAG_BY_FAMILY messages with family AF_UNIX: a dump request
 * for the states of the bitmask, or an exact one for an inode (the kernel
 * finds a UNIX socket by its inode alone), and the one unix_diag_msg parser. */

struct sd_unix_diag_req {
    uint8_t sdiag_family;
    uint8_t sdiag_protocol;
    uint16_t pad;
    uint32_t udiag_states;
    uint32_t udiag_ino;
    uint32_t udiag_show;
    uint32_t udiag_cookie[2];
};

struct sd_unix_diag_msg {
    uint8_t udiag_family;
    uint8_t udiag_type;   /* SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5 */
    uint8_t udiag_state;  /* TCP state numbers: LISTEN, ESTABLISHED, CLOSE... */
    uint8_t pad;
    uint32_t udiag_ino;
    uint32_t udiag_cookie[2];
};

_Static_assert(sizeof(struct sd_unix_diag_req) == 24, "unix_diag_req layout");
_Static_assert(sizeof(struct sd_unix_diag_msg) == 16, "unix_diag_msg layout");

enum {
    SD_LINUX_AF_UNIX = 1,
    SD_UNIX_DIAG_NAME = 0,
    SD_UNIX_DIAG_PEER = 2,
    SD_UNIX_DIAG_RQLEN = 4,
    SD_UNIX_DIAG_MEMINFO = 5,
    SD_UDIAG_SHOW = 0x01 | 0x04 | 0x10 | 0x20,  /* NAME, PEER, RQLEN, MEMINFO */
    SD_UNIX_DIAG_SHORT = -12,  /* shorter than struct unix_diag_msg */
};

typedef struct {
    struct sd_unix_diag_msg msg;
    const unsigned char *name;     /* UNIX_DIAG_NAME: sun_path bytes (abstract: a NUL first), or NULL */
    size_t name_length;
    uint64_t peer;                 /* UNIX_DIAG_PEER: the peer's inode, or SD_FIELD_ABSENT */
    uint64_t rqueue, wqueue;       /* UNIX_DIAG_RQLEN, or SD_FIELD_ABSENT */
    const unsigned char *meminfo;  /* UNIX_DIAG_MEMINFO: u32 sk_meminfo[], or NULL */
    size_t meminfo_length;
    size_t attribute_offset;       /* on SD_ATTRIBUTE_*: where the bad attribute starts */
} sd_unix_message;

/* The one unix_diag_msg parser.  A PEER or RQLEN attribute shorter than its
 * fixed payload is left absent. */
static inline int sd_unix_parse(const unsigned char *payload, size_t length, sd_unix_message *out) {
    size_t offset = sizeof(struct sd_unix_diag_msg), payload_length;
    const unsigned char *attribute;
    uint16_t type;
    int status;
    memset(out, 0, sizeof(*out));
    out->peer = out->rqueue = out->wqueue = SD_FIELD_ABSENT;
    if (length < sizeof(struct sd_unix_diag_msg))
        return SD_UNIX_DIAG_SHORT;
    memcpy(&out->msg, payload, sizeof(out->msg));
    while ((status = sd_attribute_next(payload, length, &offset, &type, &attribute, &payload_length)) == SD_ATTRIBUTE) {
        if (type == SD_UNIX_DIAG_NAME) {
            out->name = attribute;
            out->name_length = payload_length;
        } else if (type == SD_UNIX_DIAG_PEER && payload_length >= 4) {
            out->peer = sd_read_uint(attribute, 4);
        } else if (type == SD_UNIX_DIAG_RQLEN && payload_length >= 8) {
            out->rqueue = sd_read_uint(attribute, 4);
            out->wqueue = sd_read_uint(attribute + 4, 4);
        } else if (type == SD_UNIX_DIAG_MEMINFO) {
            out->meminfo = attribute;
            out->meminfo_length = payload_length;
        }
    }
    out->attribute_offset = offset;
    return status;
}

/* The same for a message at least sizeof(struct sd_unix_diag_msg) long. */
#define SD_UNIX_INODE_OFFSET offsetof(struct sd_unix_diag_msg, udiag_ino)

#define SD_UNIX_REQUEST_SIZE (sizeof(struct sd_nlmsghdr) + sizeof(struct sd_unix_diag_req))

/* A dump of the UNIX sockets in the states of the bitmask (inode 0), or an
 * exact request for the socket of inode; its length (SD_UNIX_REQUEST_SIZE). */
static inline size_t sd_unix_request(unsigned char *request, uint32_t states, uint32_t inode, uint32_t seq) {
    struct sd_unix_diag_req body;
    memset(&body, 0, sizeof(body));
    body.sdiag_family = SD_LINUX_AF_UNIX;
    body.udiag_states = inode ? UINT32_MAX : states;
    body.udiag_ino = inode;
    body.udiag_show = SD_UDIAG_SHOW;
    body.udiag_cookie[0] = body.udiag_cookie[1] = UINT32_MAX;  /* INET_DIAG_NOCOOKIE */
    sd_request_header(request, SD_UNIX_REQUEST_SIZE, SD_SOCK_DIAG_BY_FAMILY,
                      inode ? SD_NLM_F_REQUEST : SD_NLM_F_REQUEST | SD_NLM_F_DUMP, seq);
    memcpy(request + SD_NLMSG_HDRLEN, &body, sizeof(body));
    return SD_UNIX_REQUEST_SIZE;
}

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

/* Adds inode -> fd; for an inode there already, the lower fd is kept (a
 * socket held by two fds is shown under its first, whatever the order of adding). */
static inline void sd_inode_set_add(sd_inode_set *set, uint64_t inode, int32_t fd) {
    size_t i;
    for (i = sd_inode_hash(inode, set->mask); set->slots[i].inode != 0; i = (i + 1) & set->mask)
        if (set->slots[i].inode == inode) {
            if (fd < set->slots[i].fd)
                set->slots[i].fd = fd;
            return;
        }
    set->slots[i].inode = inode;
    set->slots[i].fd = fd;
    set->slots[i].seen = 0;
}

/* --- the fd scan ------------------------------------------------------------ */

typedef struct {
    uint64_t inode;
    int32_t fd;
} sd_fd_socket;

#include <sys/stat.h>

/* A netlink socket of protocol that sees pid's network namespace (pid 0:
 * the calling thread's), or -1 with errno set.  sock_diag and rtnetlink
 * dump the namespace the netlink socket was made in, so for a process in
 * another namespace (a container) this thread enters that namespace just for
 * the socket() call (which needs CAP_SYS_ADMIN: EPERM otherwise) and returns
 * to its own. */
static int sd_netlink_socket_of(int protocol, int pid) {
    char path[64];
    struct stat own, theirs;
    int home, target, nl, err;
    if (pid == 0)
        return sd_netlink_socket(protocol);
    snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
    if (stat(path, &theirs) != 0 || stat("/proc/thread-self/ns/net", &own) != 0)
        return -1;
    if (own.st_ino == theirs.st_ino && own.st_dev == theirs.st_dev)
        return sd_netlink_socket(protocol);
    if ((target = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    if ((home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
        err = errno;
        close(target);
        errno = err;
        return -1;
    }
    if (sd_enter_net_namespace(target) != 0) {
        err = errno;
        close(target);
        close(home);
        errno = err;
        return -1;
    }
    nl = sd_netlink_socket(protocol);
    err = errno;
    /* Going back cannot fail with the privilege that let us in; if it did,
     * the rest of the program would run in the other namespace. */
    if (sd_enter_net_namespace(home) != 0)
        abort();
    close(target);
    close(home);
    errno = err;
    return nl;
}

/* A NETLINK_SOCK_DIAG socket of pid's network namespace (see above). */
static int sd_diag_socket(int pid) {
    return sd_netlink_socket_of(SD_NETLINK_SOCK_DIAG, pid);
}

/* --- the fd scan, shared with a thread of its own --------------------------------
 * process_sockets dumps the system's sockets while the fds are scanned: the
 * scan (19,000 sockets: 13 ms of readdir, 55 ms of readlink) starts on a new
 * thread, the caller receives the dump (25 ms) and then takes its share of
 * the readlinks still to do.  Measured on 2 cores: 93 ms one after the
 * other, 70 ms with the scan beside the dump, 55 ms like this. */

enum { SD_SCAN_CHUNK = 64 };  /* fds taken at a time by each thread */

typedef struct {
    sd_fd_socket *sockets;
    size_t count, capacity;
    int error;
} sd_scan_part;

typedef struct {
    int pid;
    DIR *dir;             /* /proc/<pid>/fd, open until sd_scan_wait */
    int32_t *fds;         /* the fds listed */
    size_t nfds;
    int listed;           /* fds and nfds are set (atomic: release, acquire) */
    size_t next;          /* the next index of fds to look at (atomic) */
    int error;            /* errno of a failed listing, else 0 */
    sd_scan_part parts[2];  /* [0]: the scan thread's finds, [1]: the caller's */
    sd_fd_socket *sockets;  /* after sd_scan_wait: every socket found (malloc'd: the caller frees) */
    size_t count;
    int threaded;         /* a thread was started and must be joined */
    pthread_t thread;
} sd_scan;

/* Lists the fd numbers of /proc/<pid>/fd (no branch for macOS: there
 * opendir fails, as there is no /proc).  0, or -1 with scan->error set. */
static int sd_scan_list(sd_scan *scan) {
    char path[64];
    struct dirent *entry;
    int32_t *grown;
    size_t capacity = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", scan->pid);
    scan->dir = opendir(path);
    if (scan->dir == NULL) {
        scan->error = errno;
        return -1;
    }
    for (;;) {
        errno = 0;
        entry = readdir(scan->dir);
        if (entry == NULL) {
            if (errno != 0) {
                scan->error = errno;
                return -1;
            }
            return 0;
        }
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;  /* "." and ".." */
        if (scan->nfds == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            grown = (int32_t *)realloc(scan->fds, capacity * sizeof(int32_t));
            if (grown == NULL) {
                scan->error = ENOMEM;
                return -1;
            }
            scan->fds = grown;
        }
        scan->fds[scan->nfds++] = (int32_t)atoi(entry->d_name);
    }
}

/* Reads the links of listed fds, a chunk at a time, until none is left;
 * the sockets among them go to part.  An fd closed meanwhile is skipped. */
static void sd_scan_links(sd_scan *scan, sd_scan_part *part) {
    char name[16], link[64];
    size_t i, end;
    ssize_t length;
    sd_fd_socket *grown;
    int dfd = dirfd(scan->dir);
    while (part->error == 0
           && (i = __atomic_fetch_add(&scan->next, SD_SCAN_CHUNK, __ATOMIC_RELAXED)) < scan->nfds) {
        end = i + SD_SCAN_CHUNK < scan->nfds ? i + SD_SCAN_CHUNK : scan->nfds;
        for (; i < end; i++) {
            snprintf(name, sizeof(name), "%d", (int)scan->fds[i]);
            length = readlinkat(dfd, name, link, sizeof(link) - 1);
            if (length < 0) {
                if (errno == ENOENT)
                    continue;  /* closed since readdir listed it */
                part->error = errno;
                return;
            }
            if (length < 9 || memcmp(link, "socket:[", 8) != 0)
                continue;
            link[length] = '\0';
            if (part->count == part->capacity) {
                part->capacity = part->capacity ? 2 * part->capacity : 256;
                grown = (sd_fd_socket *)realloc(part->sockets, part->capacity * sizeof(sd_fd_socket));
                if (grown == NULL) {
                    part->error = ENOMEM;
                    return;
                }
                part->sockets = grown;
            }
            part->sockets[part->count].inode = strtoull(link + 8, NULL, 10);
            part->sockets[part->count].fd = scan->fds[i];
            part->count++;
        }
    }
}

static void *sd_scan_run(void *arg) {
    sd_scan *scan = (sd_scan *)arg;
    if (sd_scan_list(scan) == 0) {
        __atomic_store_n(&scan->listed, 1, __ATOMIC_RELEASE);
        sd_scan_links(scan, &scan->parts[0]);
    }
    return NULL;
}


/* Starts scanning pid's fds on a new thread, or scans now if no thread can
 * be made.  The thread blocks every signal: they stay the caller's. */
static void sd_scan_start(sd_scan *scan, int pid) {
    sigset_t all, old;
    memset(scan, 0, sizeof(*scan));
    scan->pid = pid;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    scan->threaded = pthread_create(&scan->thread, NULL, sd_scan_run, scan) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!scan->threaded)
        sd_scan_run(scan);
}

/* Takes a share of the scan still to do, waits for its end and gathers the
 * sockets found in scan->sockets, scan->count.  0, or -1 with errno set:
 * ENOENT when there is no such process (or it exited during the scan),
 * EACCES when the caller may not look. */
static int sd_scan_wait(sd_scan *scan) {
    int err;
    size_t i;
    if (__atomic_load_n(&scan->listed, __ATOMIC_ACQUIRE))
        sd_scan_links(scan, &scan->parts[1]);
    if (scan->threaded) {
        pthread_join(scan->thread, NULL);
        scan->threaded = 0;
    }
    if (scan->dir != NULL)
        closedir(scan->dir);
    scan->dir = NULL;
    free(scan->fds);
    scan->fds = NULL;
    err = scan->error ? scan->error : scan->parts[0].error ? scan->parts[0].error : scan->parts[1].error;
    if (err == 0) {
        /* The thread's part becomes the whole, the caller's is appended. */
        scan->sockets = scan->parts[0].sockets;
        scan->count = scan->parts[0].count;
        scan->parts[0].sockets = NULL;
        if (scan->parts[1].count != 0) {
            sd_fd_socket *all = (sd_fd_socket *)realloc(
                scan->sockets, (scan->count + scan->parts[1].count) * sizeof(sd_fd_socket));
            if (all == NULL) {
                err = ENOMEM;
            } else {
                for (i = 0; i < scan->parts[1].count; i++)
                    all[scan->count + i] = scan->parts[1].sockets[i];
                scan->sockets = all;
                scan->count += scan->parts[1].count;
            }
        }
    }
    free(scan->parts[0].sockets);
    free(scan->parts[1].sockets);
    scan->parts[0].sockets = scan->parts[1].sockets = NULL;
    if (err != 0) {
        free(scan->sockets);
        scan->sockets = NULL;
        scan->count = 0;
        errno = err;
        return -1;
    }
    return 0;
}

/* The scan on the calling thread alone: the sockets among /proc/<pid>/fd as
 * (inode, fd) pairs in *out (malloc'd, the caller frees), their number in
 * *count.  0, or -1 with errno set as by sd_scan_wait. */
static int sd_scan_socket_fds(int pid, sd_fd_socket **out, size_t *count) {
    sd_scan scan;
    int rc;
    memset(&scan, 0, sizeof(scan));
    scan.pid = pid;
    sd_scan_run(&scan);
    rc = sd_scan_wait(&scan);
    *out = scan.sockets;
    *count = scan.count;
    return rc;
}

/* The state letter of /proc/<pid>/stat ('R', 'S', 'Z', 'X'...), 0 when
 * there is no such process, or -1 with errno set (not allowed to read it).
 * The state follows the name, which may hold ")": the last ")" of the first
 * bytes ends it (a name is at most 64 bytes, the fields after it are
 * numbers). */
static int sd_process_state(int pid) {
    char path[64], stat[256];
    ssize_t length, i;
    int fd, err;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    length = read(fd, stat, sizeof(stat));
    err = errno;
    close(fd);
    if (length < 0) {
        errno = err;
        return err == ENOENT || err == ESRCH ? 0 : -1;
    }
    for (i = length - 1; i >= 0; i--)
        if (stat[i] == ')')
            return i + 2 < length ? (unsigned char)stat[i + 2] : 0;
    return 0;
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

#endif /* SOCKDIAG_DIAG_H */
