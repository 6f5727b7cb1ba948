/* The raw C floor of process_sockets on two threads, split as process_sockets splits it.
 *
 * A second thread lists /proc/<pid>/fd and readlinks the fds, 64 at a time
 * from a shared counter; the caller meanwhile receives one NETLINK_SOCK_DIAG
 * dump per family (TCP, INET_DIAG_INFO + SKMEMINFO) into one growing buffer,
 * then readlinks its share of the fds left.  Once both are done every kept
 * message's inode is looked up among the scanned ones.  Nothing else: no
 * records, no error paths beyond returning -errno.  Built by
 * bench_process_sockets.py and called through ctypes.
 * Returns the number of the process's sockets found, or -errno.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#include "floor_diag.h"

#define CHUNK 64
#define BATCH (1 << 20)

struct scan {
    int pid;
    DIR *dir;
    int *fds;
    size_t nfds;
    int listed;
    size_t next;
    uint32_t table[2][1 << 16];  /* inodes per thread, 0 = empty */
};

static void links(struct scan *scan, uint32_t *table) {
    char name[16], link[64];
    size_t i, end;
    while ((i = __atomic_fetch_add(&scan->next, CHUNK, __ATOMIC_RELAXED)) < scan->nfds) {
        end = i + CHUNK < scan->nfds ? i + CHUNK : scan->nfds;
        for (; i < end; i++) {
            ssize_t n;
            snprintf(name, sizeof(name), "%d", scan->fds[i]);
            n = readlinkat(dirfd(scan->dir), name, link, sizeof(link) - 1);
            if (n > 8 && memcmp(link, "socket:[", 8) == 0) {
                link[n] = 0;
                add(table, (uint32_t)strtoul(link + 8, NULL, 10));
            }
        }
    }
}

static void *scan_thread(void *arg) {
    struct scan *scan = arg;
    char path[64];
    struct dirent *entry;
    size_t capacity = 0;
    snprintf(path, sizeof(path), "/proc/%d/fd", scan->pid);
    if ((scan->dir = opendir(path)) == NULL)
        return NULL;
    while ((entry = readdir(scan->dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        if (scan->nfds == capacity) {
            capacity = capacity ? 2 * capacity : 256;
            scan->fds = realloc(scan->fds, capacity * sizeof(int));
        }
        scan->fds[scan->nfds++] = atoi(entry->d_name);
    }
    __atomic_store_n(&scan->listed, 1, __ATOMIC_RELEASE);
    links(scan, scan->table[0]);
    return NULL;
}

/* Appends one family's dump to *buf; 0 or -errno. */
static int dump(int nl, int family, char **buf, size_t *length, size_t *capacity) {
    int sent = send_dump_request(nl, family);
    if (sent < 0)
        return sent;
    for (;;) {
        ssize_t n;
        struct nlmsghdr *h;
        if (*capacity - *length < BATCH) {
            *capacity = *capacity ? 2 * *capacity : 4 * BATCH;
            *buf = realloc(*buf, *capacity);
        }
        n = recv(nl, *buf + *length, BATCH, 0);
        if (n < 0)
            return -errno;
        for (h = (struct nlmsghdr *)(*buf + *length); NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                *length = (char *)h - *buf;  /* keep the sockets, not DONE */
                return 0;
            }
            if (h->nlmsg_type == NLMSG_ERROR)
                return -EIO;
        }
        *length += (char *)h - (*buf + *length);
    }
}

int floor_process_sockets_threaded(int pid) {
    static struct scan scan;
    pthread_t thread;
    char *buf = NULL;
    size_t length = 0, capacity = 0;
    int nl, rc, found = 0;
    ssize_t left;
    struct nlmsghdr *h;
    free(scan.fds);
    memset(&scan, 0, sizeof(scan));
    scan.pid = pid;
    if (pthread_create(&thread, NULL, scan_thread, &scan) != 0)
        return -EAGAIN;
    if ((nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0) {
        rc = -errno;
    } else {
        rc = dump(nl, AF_INET, &buf, &length, &capacity);
        if (rc == 0)
            rc = dump(nl, AF_INET6, &buf, &length, &capacity);
        close(nl);
    }
    if (__atomic_load_n(&scan.listed, __ATOMIC_ACQUIRE))
        links(&scan, scan.table[1]);
    pthread_join(thread, NULL);
    if (scan.dir == NULL)
        rc = -ENOENT;
    else
        closedir(scan.dir);
    left = (ssize_t)length;
    for (h = (struct nlmsghdr *)buf; rc == 0 && NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
        uint32_t inode = ((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode;
        found += has(scan.table[0], inode) || has(scan.table[1], inode);
    }
    free(buf);
    return rc < 0 ? rc : found;
}
