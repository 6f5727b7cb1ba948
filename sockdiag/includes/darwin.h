/* The numbers of the macOS calls used by _fast_darwin.pxi: sysctl (route
 * dump, IFMIB) and libproc (the calls themselves, stubs failing with ENOSYS
 * elsewhere, are in compat.h).  The numbers are XNU's
 * (shared/reference/macos-abi.md), defined here so that they exist on every
 * platform; .github/macos/audit.py checks each against Apple's headers. */
#ifndef SOCKDIAG_DARWIN_H
#define SOCKDIAG_DARWIN_H

#include "compat.h"

enum {
    SD_CTL_NET = 4,
    SD_PF_ROUTE = 17,
    SD_PF_LINK = 18,
    SD_NET_RT_IFLIST2 = 6,
    SD_NETLINK_GENERIC = 0,
    SD_IFMIB_SYSTEM = 1,
    SD_IFMIB_IFCOUNT = 1,
    SD_IFMIB_IFDATA = 2,
    SD_IFDATA_GENERAL = 1,
    SD_IFMIBDATA_SIZE = 180,          /* struct ifmibdata */
    SD_PROC_PIDLISTFDS = 1,
    SD_PROC_FDINFO_SIZE = 8,          /* struct proc_fdinfo */
    SD_PROC_PIDFDSOCKETINFO = 3,
    SD_SOCKET_FDINFO_SIZE = 792,      /* struct socket_fdinfo */
    SD_PROX_FDTYPE_SOCKET = 2,
    /* The private struct tcp_info (TCP_INFO): the send-buffer split's two
     * members, read from one getsockopt so that they are one moment. */
    SD_TCPI_STATE_OFFSET = 0,         /* u_int8_t tcpi_state */
    SD_TCPS_LISTEN = 1,
    SD_TCPI_SND_SBBYTES_OFFSET = 64,  /* u_int32_t tcpi_snd_sbbytes: so_snd.sb_cc */
    SD_TCPI_TXUNACKED_OFFSET = 92,    /* u_int64_t tcpi_txunacked: snd_max - snd_una */
};

/* A socket's address family from getsockname, or -1: macOS has no SO_DOMAIN. */
static inline int sd_socket_family(int fd) {
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    memset(&address, 0, sizeof(address));
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    return address.ss_family;
}

#endif /* SOCKDIAG_DARWIN_H */
