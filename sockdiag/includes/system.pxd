# C declarations only (uvloop's layout): the calls and structs _fast uses.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t


cdef extern from "includes/compat.h" nogil:
    int SD_LINUX
    int SD_DARWIN

    ctypedef unsigned int socklen_t
    int SOL_SOCKET
    int SO_SNDBUF
    int SO_RCVBUF
    int SO_RCVBUFFORCE
    int SO_TYPE
    int SO_ACCEPTCONN
    int SO_DOMAIN
    int SO_PROTOCOL
    int SO_MEMINFO
    int SOCK_STREAM
    int SOCK_DGRAM
    int AF_UNIX
    int AF_INET
    int AF_INET6
    int IPPROTO_TCP
    int IPPROTO_UDP
    int SIOCOUTQ
    int SIOCINQ
    int SIOCOUTQNSD
    int TCP_NOTSENT_LOWAT
    int SD_TCP_INFO_OPT
    int SD_SO_NWRITE
    int SD_SO_NREAD
    int SD_TCP_CONNECTION_INFO

    int getsockopt(int fd, int level, int name, void *value, socklen_t *length)
    int setsockopt(int fd, int level, int name, const void *value, socklen_t length)
    int ioctl(int fd, unsigned long request, ...)

    struct sd_linux_tcp_info:
        uint8_t tcpi_state
        uint8_t tcpi_ca_state
        uint8_t tcpi_retransmits
        uint8_t tcpi_probes
        uint8_t tcpi_backoff
        uint8_t tcpi_options

    uint8_t sd_tcpi_snd_wscale(const sd_linux_tcp_info *t)
    uint8_t sd_tcpi_rcv_wscale(const sd_linux_tcp_info *t)
    uint8_t sd_tcpi_app_limited(const sd_linux_tcp_info *t)
    uint8_t sd_tcpi_fastopen_client_fail(const sd_linux_tcp_info *t)

    ctypedef struct sd_field:
        const char *name
        uint16_t offset
        uint8_t size
        uint8_t kind
    int SD_FIELD_PLAIN
    int SD_FIELD_RATE
    const sd_field sd_linux_tcp_info_fields[]
    size_t SD_LINUX_TCP_INFO_NFIELDS
    uint64_t sd_read_uint(const unsigned char *p, unsigned n)
    size_t sd_tcp_info_length_limit
    size_t sd_tcp_info_length(size_t length)

    int SD_MEMINFO_SNDBUF
    int SD_MEMINFO_WMEM_QUEUED
    int SD_MEMINFO_WMEM_ALLOC
    int SD_MEMINFO_RMEM_ALLOC
    int SD_MEMINFO_RCVBUF
    int SD_MEMINFO_DROPS
    int SD_MEMINFO_VARS

    ctypedef struct sd_drain:
        double queue_delay_s
        int limited_by
        int basis
    uint64_t SD_INFO_ABSENT
    int SD_BASIS_EMPTY
    sd_drain sd_snapshot_drain(uint64_t unsent, uint64_t unacked, uint64_t free,
                               const unsigned char *info, size_t info_length)
