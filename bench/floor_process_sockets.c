/* The raw C floor of process_sockets: what any tool must do, with nothing else.
 *
 * readlink scan of /proc/<pid>/fd, then one NETLINK_SOCK_DIAG dump per family
 * (AF_INET, AF_INET6) of TCP sockets with INET_DIAG_INFO + SKMEMINFO, every
 * message walked and its inode looked up (linear probing) among the scanned
 * ones.  Built by bench_process_sockets.py and called through ctypes.
 * Returns the number of the process's sockets found, or -errno.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

static uint32_t table[1 << 16];  /* inodes, 0 = empty */

static int dump(int nl, int family, char *buf, size_t size) {
    int found = 0;
    int sent = send_dump_request(nl, family);
    if (sent < 0)
        return sent;
    for (;;) {
        ssize_t n = recv(nl, buf, size, 0);
        struct nlmsghdr *h;
        if (n < 0)
            return -errno;
        for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE)
                return found;
            if (h->nlmsg_type == NLMSG_ERROR)
                return -EIO;
            found += has(table, ((struct inet_diag_msg *)NLMSG_DATA(h))->idiag_inode);
        }
    }
}

int floor_process_sockets(int pid) {
    static char buf[1 << 20];
    char path[64], link[64];
    DIR *dir;
    struct dirent *entry;
    int nl, found, v6;
    memset(table, 0, sizeof(table));
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    if ((dir = opendir(path)) == NULL)
        return -errno;
    while ((entry = readdir(dir)) != NULL) {
        ssize_t n = readlinkat(dirfd(dir), entry->d_name, link, sizeof(link) - 1);
        if (n > 8 && memcmp(link, "socket:[", 8) == 0) {
            link[n] = 0;
            add(table, (uint32_t)strtoul(link + 8, NULL, 10));
        }
    }
    closedir(dir);
    if ((nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
        return -errno;
    found = dump(nl, AF_INET, buf, sizeof(buf));
    v6 = found >= 0 ? dump(nl, AF_INET6, buf, sizeof(buf)) : 0;
    close(nl);
    return found < 0 ? found : v6 < 0 ? v6 : found + v6;
}
