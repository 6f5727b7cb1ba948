# C declarations only: netlink framing (includes/netlink.h), for the engine
# in _fast_netlink.pxi and the messages decoded by its callers.
from libc.stdint cimport uint16_t, uint32_t, int32_t


cdef extern from "includes/netlink.h" nogil:
    struct sd_nlmsghdr:
        uint32_t nlmsg_len
        uint16_t nlmsg_type
        uint16_t nlmsg_flags
        uint32_t nlmsg_seq
        uint32_t nlmsg_pid

    struct sd_rtattr:
        uint16_t rta_len
        uint16_t rta_type

    size_t SD_NLMSG_HDRLEN
    size_t SD_RTA_HDRLEN
    int SD_NLMSG_ERROR
    int SD_NLMSG_DONE
    int SD_NLM_F_REQUEST
    int SD_NLM_F_DUMP
    int SD_NLM_F_DUMP_INTR
    int SD_MAX_ERRNO
    size_t SD_ALIGN4(size_t length)

    int SD_ATTRIBUTE
    int SD_ATTRIBUTES_END
    int SD_ATTRIBUTE_BAD_LENGTH
    int SD_ATTRIBUTE_TRUNCATED
    int sd_attribute_next(const unsigned char *buf, size_t length, size_t *offset,
                          uint16_t *type, const unsigned char **payload, size_t *payload_length)
    uint16_t sd_attribute_length_at(const unsigned char *buf, size_t offset)

    # Linux-only calls, ENOSYS stubs elsewhere (includes/compat.h).
    int sd_netlink_socket(int protocol)
    int sd_netlink_send(int fd, const void *request, size_t length)
    int sd_netlink_join(int fd, uint32_t groups)
    int SD_RECEIVE_MAX
    int sd_receive_datagrams(int fd, unsigned char *buf, size_t slot, unsigned count, size_t *lengths)

    # POSIX, for the engine.
    ssize_t recv(int fd, void *buf, size_t length, int flags)
    int close(int fd)
    int MSG_TRUNC
    int MSG_PEEK
    int MSG_DONTWAIT
