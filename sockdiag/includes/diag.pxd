# C declarations only: sock_diag messages, the inet_diag_msg parser, the dump
# request, the exact request, the unix_diag parser and requests, the inode
# set and the /proc/<pid>/fd scan (includes/diag.h).
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int32_t
from .system cimport socklen_t


cdef extern from "includes/diag.h" nogil:
    struct sd_inet_diag_sockid:
        uint16_t idiag_sport
        uint16_t idiag_dport
        uint32_t idiag_src[4]
        uint32_t idiag_dst[4]
        uint32_t idiag_if
        uint32_t idiag_cookie[2]

    struct sd_inet_diag_msg:
        uint8_t idiag_family
        uint8_t idiag_state
        uint8_t idiag_timer
        uint8_t idiag_retrans
        sd_inet_diag_sockid id
        uint32_t idiag_expires
        uint32_t idiag_rqueue
        uint32_t idiag_wqueue
        uint32_t idiag_uid
        uint32_t idiag_inode

    # Address families as numbered in Linux's messages (macOS numbers AF_INET6 30).
    int SD_LINUX_AF_INET
    int SD_LINUX_AF_INET6
    int SD_SOCK_DIAG_BY_FAMILY
    int SD_NETLINK_SOCK_DIAG
    int SD_INET_DIAG_REQ_BYTECODE
    int SD_INET_DIAG_INFO
    int SD_INET_DIAG_CONG
    int SD_INET_DIAG_SKMEMINFO
    int SD_TCP_LISTEN
    int SD_SKNLGRP_INET_TCP_DESTROY
    int SD_SKNLGRP_INET6_TCP_DESTROY
    size_t SD_TCPI_NOTSENT_OFFSET
    size_t SD_TCPI_DELIVERY_RATE_OFFSET
    size_t SD_TCPI_BYTES_SENT_OFFSET
    size_t SD_TCPI_BYTES_ACKED_OFFSET
    size_t SD_TCPI_BYTES_RECEIVED_OFFSET
    size_t SD_TCPI_BYTES_RETRANS_OFFSET
    uint64_t SD_FIELD_ABSENT

    ctypedef struct sd_diag_message:
        sd_inet_diag_msg msg
        const unsigned char *info
        size_t info_length
        const unsigned char *meminfo
        size_t meminfo_length
        const unsigned char *cong
        size_t cong_length
        size_t attribute_offset

    int SD_DIAG_OK
    int SD_DIAG_SHORT
    int SD_DIAG_FAMILY
    int sd_diag_parse(const unsigned char *payload, size_t length, sd_diag_message *out)
    size_t SD_DIAG_INODE_OFFSET
    uint64_t sd_diag_info_field(const sd_diag_message *m, size_t offset, unsigned size)
    uint64_t sd_meminfo_value(const unsigned char *meminfo, size_t length, size_t index)
    uint64_t sd_diag_meminfo(const sd_diag_message *m, size_t index)
    uint64_t sd_diag_cookie(const sd_diag_message *m)

    size_t SD_DIAG_REQUEST_SIZE(size_t bytecode_length)
    size_t sd_diag_request(unsigned char *request, uint8_t family, uint8_t protocol, uint32_t states,
                           uint8_t ext, const unsigned char *bytecode, size_t bytecode_length)

    struct sd_unix_diag_msg:
        uint8_t udiag_family
        uint8_t udiag_type
        uint8_t udiag_state
        uint32_t udiag_ino

    int SD_LINUX_AF_UNIX
    int SD_UNIX_DIAG_SHORT
    ctypedef struct sd_unix_message:
        sd_unix_diag_msg msg
        const unsigned char *name
        size_t name_length
        uint64_t peer
        uint64_t rqueue
        uint64_t wqueue
        const unsigned char *meminfo
        size_t meminfo_length
        size_t attribute_offset

    int sd_unix_parse(const unsigned char *payload, size_t length, sd_unix_message *out)
    size_t SD_UNIX_INODE_OFFSET
    enum: SD_UNIX_REQUEST_SIZE
    size_t sd_unix_request(unsigned char *request, uint32_t states, uint32_t inode, uint32_t seq)

    size_t SD_DIAG_NAME_SIZE
    enum: SD_DIAG_NAME_MAX
    size_t SD_DIAG_EXACT_REQUEST_SIZE
    void sd_diag_name(const unsigned char *payload, unsigned char *name)
    void sd_diag_exact_request(unsigned char *request, const unsigned char *name, uint8_t ext, uint32_t seq)

    ctypedef struct sd_inode_slot:
        uint64_t inode
        int32_t fd
        int32_t seen

    ctypedef struct sd_inode_set:
        sd_inode_slot *slots
        size_t mask

    int sd_inode_set_init(sd_inode_set *set, size_t n)
    void sd_inode_set_free(sd_inode_set *set)
    sd_inode_slot *sd_inode_set_find(const sd_inode_set *set, uint64_t inode)
    void sd_inode_set_add(sd_inode_set *set, uint64_t inode, int32_t fd)

    ctypedef struct sd_fd_socket:
        uint64_t inode
        int32_t fd

    int sd_scan_socket_fds(int pid, sd_fd_socket **out, size_t *count)
    int sd_process_state(int pid)

    ctypedef struct sd_scan:
        sd_fd_socket *sockets
        size_t count

    void sd_scan_start(sd_scan *scan, int pid)
    int sd_scan_wait(sd_scan *scan)
    int sd_diag_socket(int pid)
    int sd_netlink_socket_of(int protocol, int pid)
    long sd_pid_of_name(const char *name)

    ctypedef struct DIR
    struct dirent
    DIR *opendir(const char *name)
    dirent *readdir(DIR *d)
    int closedir(DIR *d)
    const char *sd_dirent_name(dirent *entry)

    # POSIX, for address formatting.
    const char *inet_ntop(int af, const void *src, char *dst, socklen_t size)
    uint16_t ntohs(uint16_t value)
