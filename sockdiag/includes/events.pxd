# C declarations for _fast_events.pxi: sock_diag dumps, destroy events, fd scan.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "includes/events.h" nogil:
    int SD_NLMSG_ERROR
    int SD_NLMSG_DONE
    int SD_NLM_F_DUMP_INTR
    int SD_TCP_LISTEN
    uint64_t SD_COUNTER_ABSENT

    ctypedef struct sd_tcp_counters:
        uint64_t cookie
        uint64_t inode
        uint64_t bytes_sent
        uint64_t bytes_acked
        uint64_t bytes_received
        uint64_t bytes_retrans
        uint8_t family
        uint8_t state
        uint16_t local_port
        uint16_t remote_port
        uint8_t local_address[16]
        uint8_t remote_address[16]
        const unsigned char *info
        uint32_t info_length

    int sd_nl_next(const unsigned char *buf, size_t length, size_t *offset,
                   uint16_t *type, uint16_t *flags,
                   const unsigned char **payload, size_t *payload_length)
    int sd_diag_parse(const unsigned char *payload, size_t length, sd_tcp_counters *out)
    int sd_diag_socket()
    int sd_diag_subscribe_destroy(int fd)
    int sd_diag_request_tcp(int fd, int family, uint32_t states, uint32_t seq)
    uint64_t sd_socket_link_inode(const char *target, ssize_t length)
    long sd_pid_of_name(const char *name)

    ctypedef struct DIR
    struct dirent
    DIR *opendir(const char *name)
    DIR *fdopendir(int fd)
    dirent *readdir(DIR *d)
    int closedir(DIR *d)
    int dirfd(DIR *d)
    const char *sd_dirent_name(dirent *entry)
    int openat(int dirfd, const char *path, int flags)
    ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
    ssize_t recv(int fd, void *buf, size_t size, int flags)
    int close(int fd)
    int O_RDONLY
    int O_DIRECTORY
    int O_CLOEXEC
    int MSG_DONTWAIT
    int MSG_TRUNC
    int SO_RCVBUF
    int SO_RCVBUFFORCE
