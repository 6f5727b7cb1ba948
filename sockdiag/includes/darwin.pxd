# C declarations only: the macOS calls of _fast_darwin.pxi (ENOSYS stubs elsewhere, compat.h).
from libc.stdint cimport uint64_t


cdef extern from "includes/darwin.h" nogil:
    int SD_CTL_NET
    int SD_PF_ROUTE
    int SD_PF_LINK
    int SD_NET_RT_IFLIST2
    int SD_NETLINK_GENERIC
    int SD_IFMIB_SYSTEM
    int SD_IFMIB_IFCOUNT
    int SD_IFMIB_IFDATA
    int SD_IFDATA_GENERAL
    int SD_IFMIBDATA_SIZE
    int SD_PROC_PIDLISTFDS
    int SD_PROC_FDINFO_SIZE
    int SD_PROC_PIDFDSOCKETINFO
    int SD_SOCKET_FDINFO_SIZE
    int SD_PROX_FDTYPE_SOCKET
    int SD_TCPI_STATE_OFFSET
    int SD_TCPS_LISTEN
    int SD_TCPI_SND_SBBYTES_OFFSET
    int SD_TCPI_TXUNACKED_OFFSET

    int sd_sysctl(int *mib, unsigned int n, void *old, size_t *oldlen)
    int sd_proc_pidinfo(int pid, int flavor, uint64_t arg, void *buf, int size)
    int sd_proc_pidfdinfo(int pid, int fd, int flavor, void *buf, int size)
    int sd_socket_family(int fd)
