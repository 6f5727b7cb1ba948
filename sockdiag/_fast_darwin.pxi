# macOS raw calls: each returns the kernel's bytes, decoded in sockdiag.decode.
# Everywhere else the calls are stubs failing with ENOSYS (includes/compat.h).
# Failures are OSError(errno, strerror, None, None, call); _darwin.py's
# wrap_exceptions turns them into sockdiag's exceptions.

from libc.errno cimport errno, EAGAIN, EBADF, ECONNRESET, ENOENT, ENOMEM, ENOSYS, ENOTSOCK, EOPNOTSUPP

from .includes.darwin cimport *

# Bounds of the growing reads: the route dump retries when interfaces appear
# between the size probe and the read; the fd list caps as psutil does.
cdef int _SYSCTL_ATTEMPTS = 8
cdef int _FDLIST_MAX_BYTES = 24 << 20

cdef enum:
    # getsockopt buffers larger than every known layout, so that the length
    # the kernel returns tells the layout (it copies min(size, ours)).
    DARWIN_TCP_INFO_BUFSIZE = 512
    DARWIN_TCP_CONNECTION_INFO_BUFSIZE = 256

# Where the split reads the private tcp_info (includes/darwin.h); sockdiag.decode
# reads the same offsets from here.
DARWIN_TCPI_SND_SBBYTES_OFFSET = SD_TCPI_SND_SBBYTES_OFFSET
DARWIN_TCPI_TXUNACKED_OFFSET = SD_TCPI_TXUNACKED_OFFSET


cdef object _darwin_error(int err, str call):
    return OSError(err, os.strerror(err), None, None, call)


cdef int darwin_raise_if_gone(int fd, int err, str call) except -1:
    """OSError(ECONNRESET) when a TCP getsockopt's errno says the connection is gone.

    tcp_ctloutput answers ECONNRESET once the connection's control block is
    freed (reset by the peer, or closed and done), for every TCP option.
    """
    if err == ECONNRESET:
        raise _socket_error(fd, err, call)
    return 0


cdef object _darwin_split(const unsigned char *info, Py_ssize_t length, long sndbuf):
    """SendBuffer from one private tcp_info; None if too short or a listening socket's."""
    cdef uint32_t queued
    cdef uint64_t unacked
    if length < SD_TCPI_TXUNACKED_OFFSET + 8 or info[SD_TCPI_STATE_OFFSET] == SD_TCPS_LISTEN:
        return None
    memcpy(&queued, info + SD_TCPI_SND_SBBYTES_OFFSET, 4)
    memcpy(&unacked, info + SD_TCPI_TXUNACKED_OFFSET, 8)
    # SYN and FIN take sequence space but no buffer bytes.
    if unacked > queued:
        unacked = queued
    return _tcp_send_buffer(sndbuf, <long>unacked, <long>(queued - unacked), sndbuf - <long>queued)


def decode_send_buffer_darwin(const unsigned char[::1] tcp_info not None, long sndbuf):
    """The macOS send-buffer split of one private tcp_info, as send_buffer makes it there."""
    buffer = None
    if tcp_info.shape[0] > 0:
        buffer = _darwin_split(&tcp_info[0], tcp_info.shape[0], sndbuf)
    if buffer is None:
        raise ValueError(
            f"tcp_info of {tcp_info.shape[0]} bytes: no split (shorter than "
            f"{SD_TCPI_TXUNACKED_OFFSET + 8} bytes, or a listening socket's)")
    return buffer


cdef bytes _sysctl_bytes(int *mib, unsigned int n, str what):
    """A sysctl's whole value: probe the size, read, retry while it grows."""
    cdef size_t size
    cdef bytearray buf
    for _ in range(_SYSCTL_ATTEMPTS):
        size = 0
        if sd_sysctl(mib, n, NULL, &size) != 0:
            raise _darwin_error(errno, what)
        size += size // 8 + 1024  # room for what appears before the read
        buf = bytearray(size)
        if sd_sysctl(mib, n, <char *>buf, &size) == 0:
            return bytes(buf[:size])
        if errno != ENOMEM:
            raise _darwin_error(errno, what)
    raise OSError(EAGAIN, "the answer kept growing between size probe and read", None, None, what)


def darwin_iflist2():
    """The route dump sysctl {CTL_NET, PF_ROUTE, 0, 0, NET_RT_IFLIST2, 0}: bytes."""
    cdef int mib[6]
    mib[:] = [SD_CTL_NET, SD_PF_ROUTE, 0, 0, SD_NET_RT_IFLIST2, 0]
    return _sysctl_bytes(mib, 6, "sysctl(NET_RT_IFLIST2)")


def darwin_ifmibdata_all():
    """[(ifindex, struct ifmibdata bytes)] for ifindex 1..IFMIB_IFCOUNT.

    IFMIB_IFCOUNT is the highest index in use; empty slots (ENOENT) are
    skipped, as ifmib(4) says the table may be sparse.
    """
    cdef int mib[6]
    cdef int count = 0
    cdef size_t size = sizeof(int)
    cdef int index
    cdef bytearray buf
    mib[:] = [SD_CTL_NET, SD_PF_LINK, SD_NETLINK_GENERIC, SD_IFMIB_SYSTEM, SD_IFMIB_IFCOUNT, 0]
    if sd_sysctl(mib, 5, &count, &size) != 0:
        raise _darwin_error(errno, "sysctl(IFMIB_IFCOUNT)")
    result = []
    mib[:] = [SD_CTL_NET, SD_PF_LINK, SD_NETLINK_GENERIC, SD_IFMIB_IFDATA, 0, SD_IFDATA_GENERAL]
    for index in range(1, count + 1):
        mib[4] = index
        buf = bytearray(SD_IFMIBDATA_SIZE)
        size = SD_IFMIBDATA_SIZE
        if sd_sysctl(mib, 6, <char *>buf, &size) != 0:
            if errno == ENOENT:
                continue
            raise _darwin_error(errno, f"sysctl(IFMIB_IFDATA, {index})")
        result.append((index, bytes(buf[:size])))
    return result


def darwin_proc_fdlist(int pid):
    """proc_pidinfo(PROC_PIDLISTFDS) of pid: the bytes of its proc_fdinfo array."""
    cdef int size, written
    cdef bytearray buf
    size = sd_proc_pidinfo(pid, SD_PROC_PIDLISTFDS, 0, NULL, 0)
    while size >= 0:
        size += 32 * SD_PROC_FDINFO_SIZE
        buf = bytearray(size)
        written = sd_proc_pidinfo(pid, SD_PROC_PIDLISTFDS, 0, <char *>buf, size)
        # The kernel does not report truncation: a full buffer may be one.
        if written >= 0 and (written < size or size >= _FDLIST_MAX_BYTES):
            return bytes(buf[:written])
        size = written if written < 0 else size * 2
    raise _darwin_error(-size, "proc_pidinfo(PROC_PIDLISTFDS)")


def darwin_socket_fdinfos(int pid, fds):
    """[(fd, struct socket_fdinfo bytes)] of pid's fds; fds closed meanwhile are left out."""
    cdef int fd, written
    cdef bytearray buf
    result = []
    for fd in fds:
        buf = bytearray(SD_SOCKET_FDINFO_SIZE)
        written = sd_proc_pidfdinfo(pid, fd, SD_PROC_PIDFDSOCKETINFO, <char *>buf,
                                    SD_SOCKET_FDINFO_SIZE)
        if written == SD_SOCKET_FDINFO_SIZE:
            result.append((fd, bytes(buf)))
        elif written == -EBADF or written == -ENOTSOCK or written == -EOPNOTSUPP:
            continue  # closed, or reused for something else, since the listing
        elif written < 0:
            raise _darwin_error(-written, "proc_pidfdinfo(PROC_PIDFDSOCKETINFO)")
        else:
            raise ValueError(
                f"proc_pidfdinfo({pid}, {fd}) wrote {written} bytes, not {SD_SOCKET_FDINFO_SIZE}")
    return result


def darwin_tcp_info_bytes(sock_or_fd):
    """(private tcp_info bytes or None, public tcp_connection_info bytes) of a TCP socket.

    The buffers are larger than every known layout, so the returned lengths
    tell the layouts.  The private struct is None when the kernel refuses it.
    """
    cdef int fd = _fileno(sock_or_fd)
    cdef unsigned char public_info[DARWIN_TCP_CONNECTION_INFO_BUFSIZE]
    cdef unsigned char private_info[DARWIN_TCP_INFO_BUFSIZE]
    cdef socklen_t public_length = sizeof(public_info)
    cdef socklen_t private_length = sizeof(private_info)
    if not SD_DARWIN:
        raise _socket_error(fd, ENOSYS, "getsockopt(TCP_CONNECTION_INFO)")
    if getsockopt(fd, IPPROTO_TCP, SD_TCP_CONNECTION_INFO, public_info, &public_length) != 0:
        raise _tcp_level_error(fd, errno, "getsockopt(TCP_CONNECTION_INFO)")
    public_bytes = bytes(public_info[:public_length])
    if getsockopt(fd, IPPROTO_TCP, SD_TCP_INFO_OPT, private_info, &private_length) != 0:
        darwin_raise_if_gone(fd, errno, "getsockopt(TCP_INFO)")
        return None, public_bytes
    return bytes(private_info[:private_length]), public_bytes
