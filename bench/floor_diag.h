/* What both raw C floors of process_sockets share: the inode set (linear
 * probing, 0 = empty) and the sock_diag TCP dump request. */
#ifndef SOCKDIAG_FLOOR_DIAG_H
#define SOCKDIAG_FLOOR_DIAG_H

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>

#define MASK ((1u << 16) - 1)

static void add(uint32_t *table, uint32_t inode) {
    uint32_t i = (inode * 2654435761u) & MASK;
    while (table[i] && table[i] != inode)
        i = (i + 1) & MASK;
    table[i] = inode;
}

static int has(const uint32_t *table, uint32_t inode) {
    uint32_t i = (inode * 2654435761u) & MASK;
    while (table[i]) {
        if (table[i] == inode)
            return 1;
        i = (i + 1) & MASK;
    }
    return 0;
}

/* Asks for every TCP socket of family with INET_DIAG_INFO + SKMEMINFO; 0 or -errno. */
static int send_dump_request(int nl, int family) {
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    memset(&msg, 0, sizeof(msg));
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = family;
    msg.req.sdiag_protocol = IPPROTO_TCP;
    msg.req.idiag_states = ~0u;
    msg.req.idiag_ext = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1));
    if (sendto(nl, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    return 0;
}

#endif
