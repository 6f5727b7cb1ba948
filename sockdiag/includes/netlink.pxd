# C declarations only: netlink framing shared by the sock_diag and rtnetlink dumps.
from libc.stdint cimport uint16_t, uint32_t, int32_t


cdef extern from "includes/netlink.h" nogil:
    struct sd_nlmsghdr:
        uint32_t nlmsg_len
        uint16_t nlmsg_type
        uint16_t nlmsg_flags
        uint32_t nlmsg_seq
        uint32_t nlmsg_pid

    struct sd_nlmsgerr:
        int32_t error

    struct sd_rtattr:
        uint16_t rta_len
        uint16_t rta_type

    size_t SD_NLMSG_HDRLEN
    size_t SD_RTA_HDRLEN
    int SD_NLMSG_ERROR
    int SD_NLMSG_DONE
    int SD_NLM_F_DUMP_INTR
    size_t SD_ALIGN4(size_t length)
    int sd_nl_next(const unsigned char *buf, size_t length, size_t *offset,
                   uint16_t *type, uint16_t *flags,
                   const unsigned char **payload, size_t *payload_length)

    # POSIX, for the dump loops.
    ssize_t recv(int fd, void *buf, size_t length, int flags)
    int close(int fd)
    int MSG_TRUNC
