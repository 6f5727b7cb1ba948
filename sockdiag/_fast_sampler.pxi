# Recording (sockdiag/recording.py): one sample of a TCP socket in one call.
#
# A send through InstrumentedSocket pays for a sample; built in Python from
# send_buffer() + tcp_info() structs it costs about twice the syscalls, so
# the Linux TCP path reads the kernel directly and fills the Sample's slots.

from libc.errno cimport errno, ENOSYS
from .includes.diag cimport SD_TCPI_DELIVERY_RATE_OFFSET


cdef class TcpSampler:
    """Takes Samples of Linux TCP sockets: SIOCOUTQNSD, SIOCOUTQ, SO_MEMINFO, TCP_INFO.

    sample_type is Sample or its subclass with the TcpInfo attributes named
    in fields.  The values are those of send_buffer() and tcp_info() (the
    Python path in recording.py is the reference the tests hold it to), and so
    are its errors (OSError; ENOSYS off Linux).
    """

    cdef _Layout layout
    cdef tuple fields
    cdef readonly object info  # the TcpInfo of the last take: for the recording's drain

    def __cinit__(self, object sample_type, tuple fields):
        if not SD_LINUX:
            raise OSError(ENOSYS, "the fast sampler reads Linux TCP sockets")
        self.layout = _Layout(sample_type, (
            "time_s", "size", "unacked", "unsent", "free", "queue_delay_s", "limited_by", "stalled_s")
            + fields)
        self.fields = fields

    def take(self, int fd):
        """A Sample of fd, stamped with CLOCK_MONOTONIC (time.monotonic()'s clock)."""
        cdef int queued = 0, unsent = 0
        cdef uint32_t mem[16]
        cdef socklen_t mem_length = sizeof(mem)
        cdef unsigned char info[512]
        cdef socklen_t info_length = sizeof(info)
        cdef sd_drain drain
        cdef Py_ssize_t i
        if (ioctl(fd, SIOCOUTQNSD, &unsent) != 0
                or ioctl(fd, SIOCOUTQ, &queued) != 0
                or getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &mem_length) != 0
                or getsockopt(fd, IPPROTO_TCP, SD_TCP_INFO_OPT, info, &info_length) != 0):
            err = errno
            send_buffer(fd)  # raises the error that says what the socket is now
            raise _tcp_level_error(fd, err, "getsockopt(TCP_INFO)")
        info_length = sd_tcp_info_length(info_length)  # as long as an assumed older kernel's
        sample = self.layout.new()
        self.layout.put(sample, 0, _monotonic_s())
        self.layout.put(sample, 1, mem[SD_MEMINFO_SNDBUF])
        # As in send_buffer(): the ioctls are not one snapshot.
        self.layout.put(sample, 2, queued - unsent if queued > unsent else 0)
        self.layout.put(sample, 3, unsent)
        cdef long free = <long>mem[SD_MEMINFO_SNDBUF] - <long>mem[SD_MEMINFO_WMEM_QUEUED]
        self.layout.put(sample, 4, free if free > 0 else 0)
        drain = sd_snapshot_drain(unsent, queued - unsent if queued > unsent else 0, free if free > 0 else 0,
                                  info, info_length)
        put_drain(self.layout, sample, 5, 6, -1, 7, &drain)
        self.info = _decode_linux_tcp_info(info, info_length)
        for i, name in enumerate(self.fields):
            self.layout.put(sample, 8 + i, getattr(self.info, name))
        return sample

    def with_drain(self, object sample, object queue_delay_s, object limited_by, object stalled_s):
        """A copy of a Sample this sampler took, with the drain across samples
        (sockdiag.drain) in place of one look's: Sample.replace at C speed."""
        if type(sample) is not self.layout.cls:
            raise TypeError(f"a {self.layout.cls.__name__} of this sampler, not {type(sample).__name__}")
        copy = self.layout.copy(sample)
        self.layout.put(copy, 5, queue_delay_s)
        self.layout.put(copy, 6, limited_by)
        self.layout.put(copy, 7, stalled_s)
        return copy
