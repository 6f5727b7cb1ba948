# C declarations for _fast_events.pxi (the rest comes from diag.pxd).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "includes/events.h" nogil:
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

    int sd_diag_parse(const unsigned char *payload, size_t length, sd_tcp_counters *out)
    int sd_diag_subscribe_destroy(int fd)
    long sd_pid_of_name(const char *name)

    ctypedef struct DIR
    struct dirent
    DIR *opendir(const char *name)
    dirent *readdir(DIR *d)
    int closedir(DIR *d)
    const char *sd_dirent_name(dirent *entry)
    int MSG_DONTWAIT
    int SO_RCVBUF
    int SO_RCVBUFFORCE
