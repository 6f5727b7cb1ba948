# sock_diag for per-process accounting (included at the end of _fast.pyx):
# a counters-only dump of every TCP socket, the socket-destroy notifications
# (as `ss -E`) and the scan of /proc/<pid>/fd links.  Linux only; elsewhere
# the calls raise NotSupported.

from libc.stdlib cimport malloc, free
from libc.errno cimport EAGAIN, EPERM, ENOBUFS, EINTR, EACCES, ENOSYS
from .includes.events cimport *
from .includes.netlink cimport SD_NLMSG_DONE, SD_NLMSG_ERROR, SD_NLM_F_DUMP_INTR, recv, close, sd_nl_next
from .includes.diag cimport (
    SD_LINUX_AF_INET, SD_LINUX_AF_INET6, SD_INET_DIAG_INFO,
    sd_diag_socket, sd_diag_request, sd_scan_socket_fds, sd_fd_socket)

from ._common import AccessDenied, SockdiagError, TcpDestroyEvent
import socket as _socket

cdef enum:
    EVENT_BUFFER_BYTES = 1 << 16
    # Every state but TIME_WAIT (6) and NEW_SYN_RECV (12): those are
    # mini-sockets with no tcp_info and no bytes of their own.
    ACCOUNTED_STATES = 0xFFE & ~(1 << 6)
    # Room for bursts of destroy notifications between two drains.
    EVENT_RCVBUF_BYTES = 32 << 20

cdef uint32_t _dump_seq = 0


cdef object _family_name(uint8_t family):
    return "IPv6" if family == SD_LINUX_AF_INET6 else "IPv4"


cdef object _address(uint8_t family, const uint8_t *raw):
    if family == SD_LINUX_AF_INET6:
        return _socket.inet_ntop(_socket.AF_INET6, (<const char *>raw)[:16])
    return _socket.inet_ntop(_socket.AF_INET, (<const char *>raw)[:4])


cdef inline object _counter(uint64_t value):
    return None if value == SD_COUNTER_ABSENT else value


cdef object _destroy_event(const sd_tcp_counters *c):
    tcp = _decode_linux_tcp_info(c.info, c.info_length) if c.info_length >= 8 else None
    return TcpDestroyEvent(
        c.cookie, _family_name(c.family),
        _address(c.family, c.local_address), c.local_port,
        _address(c.family, c.remote_address), c.remote_port,
        _name(TCP_STATES, c.state), tcp)


def decode_inet_diag_msg(const unsigned char[::1] buf not None):
    """Decode one SOCK_DIAG_BY_FAMILY message payload (inet_diag_msg + attributes).

    A TcpDestroyEvent, or ValueError when the buffer is truncated or its
    attributes are malformed (see sockdiag.decode.tcp_destroy_event_linux).
    """
    cdef sd_tcp_counters c
    if buf.shape[0] == 0 or sd_diag_parse(&buf[0], buf.shape[0], &c) != 0:
        raise ValueError(f"not an inet_diag_msg: {buf.shape[0]} bytes, truncated or malformed")
    return _destroy_event(&c)


cdef object _oserror(str what):
    err = errno
    if err == ENOSYS:
        return NotSupported(f"{what}: sock_diag exists on Linux only")
    return SockdiagError(f"{what} failed: {os.strerror(err)}")


def tcp_counters():
    """Byte counters of every TCP socket of the caller's network namespace.

    One SOCK_DIAG_BY_FAMILY dump per family with INET_DIAG_INFO.  Returns
    (sockets, listeners): sockets is a list of (cookie, inode, (bytes_sent,
    bytes_acked, bytes_received, bytes_retrans), local port, local address)
    for every socket holding tcp_info (counters a kernel does not return are
    None; inode is 0 once the process has closed the socket); listeners is a
    list of (local port, local address, inode) of LISTEN sockets.  Local
    addresses are the kernel's 16 raw bytes (IPv4: 4 bytes, then zeros).  A
    dump the kernel marks interrupted (the table changed under it) is taken
    again.
    """
    cdef int fd = sd_diag_socket(0)
    if fd < 0:
        raise _oserror("socket(NETLINK_SOCK_DIAG)")
    cdef unsigned char *buf = <unsigned char *>malloc(DIAG_RECV_BUFFER)
    if buf == NULL:
        close(fd)
        raise MemoryError()
    try:
        for _attempt in range(DIAG_DUMP_ATTEMPTS):
            sockets = []
            listeners = []
            interrupted = _dump_counters(fd, buf, SD_LINUX_AF_INET, sockets, listeners)
            interrupted |= _dump_counters(fd, buf, SD_LINUX_AF_INET6, sockets, listeners)
            if not interrupted:
                break
        return sockets, listeners
    finally:
        free(buf)
        close(fd)


cdef bint _dump_counters(int fd, unsigned char *buf, int family, list sockets, list listeners) except -1:
    """Dump one family into sockets/listeners; True if the kernel flagged it interrupted."""
    global _dump_seq
    cdef ssize_t got
    cdef size_t offset, payload_length
    cdef uint16_t msg_type, msg_flags
    cdef const unsigned char *payload
    cdef sd_tcp_counters c
    cdef int status, error
    cdef bint interrupted = False
    _dump_seq += 1
    if sd_diag_request(fd, family, ACCOUNTED_STATES, 1 << (SD_INET_DIAG_INFO - 1), _dump_seq) != 0:
        raise _oserror("sock_diag dump request")
    while True:
        with nogil:
            got = recv(fd, buf, DIAG_RECV_BUFFER, 0)
        if got < 0:
            if errno == EINTR:
                continue
            raise _oserror("recv(NETLINK_SOCK_DIAG)")
        offset = 0
        while True:
            status = sd_nl_next(buf, got, &offset, &msg_type, &msg_flags, &payload, &payload_length)
            if status == 0:
                break
            if status < 0:
                raise SockdiagError("sock_diag: malformed netlink message from the kernel")
            if msg_flags & SD_NLM_F_DUMP_INTR:
                interrupted = True
            if msg_type == SD_NLMSG_DONE:
                return interrupted
            if msg_type == SD_NLMSG_ERROR:
                error = 0
                if payload_length >= 4:
                    memcpy(&error, payload, 4)
                raise SockdiagError(f"sock_diag dump failed: {os.strerror(-error)}")
            if sd_diag_parse(payload, payload_length, &c) != 0 or c.info == NULL:
                continue
            if c.state == TCP_LISTEN:
                listeners.append((c.local_port, (<const char *>c.local_address)[:16], c.inode))
            else:
                sockets.append((c.cookie, c.inode,
                                (_counter(c.bytes_sent), _counter(c.bytes_acked),
                                 _counter(c.bytes_received), _counter(c.bytes_retrans)),
                                c.local_port, (<const char *>c.local_address)[:16]))


def socket_owners(pids=None):
    """Map socket inode -> pid from the /proc/<pid>/fd links of every process (or of pids).

    A socket held by several processes (inherited across fork) goes to the
    first pid that holds it, in /proc order (ascending pids), so it is
    counted once.  Returns (owners, unreadable): unreadable is the number of
    processes whose fds the caller may not read (other users' without root).
    """
    cdef dict owners = {}
    cdef int unreadable = 0
    cdef DIR *proc
    cdef dirent *entry
    cdef long pid
    if pids is None:
        proc = opendir(b"/proc")
        if proc == NULL:
            raise _oserror("opendir(/proc)")
        pid_list = []
        try:
            while True:
                entry = readdir(proc)
                if entry == NULL:
                    break
                pid = sd_pid_of_name(sd_dirent_name(entry))
                if pid > 0:
                    pid_list.append(pid)
        finally:
            closedir(proc)
    else:
        pid_list = pids
    refused = [pid for pid in pid_list if _scan_fds(pid, owners) == EACCES]
    # A process in the middle of exec or exit refuses for a moment: ask again.
    for pid in refused:
        if _scan_fds(pid, owners) == EACCES and not _exiting(pid):
            unreadable += 1
    return owners, unreadable


def _exiting(long pid):
    """A zombie or exiting process (whose fd table refuses even root), or gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except (OSError, IndexError):
        return True


cdef int _scan_fds(long pid, dict owners) except -1:
    """Add pid's socket inodes to owners; 0, or the errno that stopped the scan."""
    cdef sd_fd_socket *found = NULL
    cdef size_t count = 0, i
    if sd_scan_socket_fds(pid, &found, &count) != 0:
        return errno
    try:
        for i in range(count):
            if found[i].inode not in owners:
                owners[found[i].inode] = pid
    finally:
        free(found)
    return 0


cdef class DestroyListener:
    """Subscription to the kernel's TCP socket-destroy notifications (Linux).

    Joins SKNLGRP_INET_TCP_DESTROY and SKNLGRP_INET6_TCP_DESTROY on a
    NETLINK_SOCK_DIAG socket, as `ss -E` does, for the caller's network
    namespace.  Any user may join them: the kernel creates the sock_diag
    netlink socket with NL_CFG_F_NONROOT_RECV (net/core/sock_diag.c).
    ``drain()`` returns the TcpDestroyEvent of every socket freed since the
    last call.  ``overflows`` counts the times the kernel dropped
    notifications because they came faster than they were read (ENOBUFS);
    then some closed sockets are missed.  ``receive_buffer_bytes`` is room
    for notifications between two drains (set past the system maximum when
    the caller may).  Raises AccessDenied when a security policy refuses the
    subscription, NotSupported off Linux.
    """

    cdef int fd
    cdef readonly int overflows

    def __cinit__(self, int receive_buffer_bytes=EVENT_RCVBUF_BYTES):
        self.fd = -1
        self.overflows = 0
        cdef int fd = sd_diag_socket(0)
        if fd < 0:
            raise _oserror("socket(NETLINK_SOCK_DIAG)")
        if sd_diag_subscribe_destroy(fd) != 0:
            err = errno
            close(fd)
            if err == EPERM:
                raise AccessDenied(msg=(
                    "the kernel refused the socket-destroy notifications (EPERM)"))
            raise SockdiagError(f"joining the sock_diag destroy groups failed: {os.strerror(err)}")
        cdef int size = receive_buffer_bytes
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(int)) != 0:
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(int))
        self.fd = fd

    def fileno(self):
        """The netlink socket's fd (readable when notifications are waiting)."""
        return self.fd

    def drain(self):
        """TcpDestroyEvent of every TCP socket freed since the last call, oldest first."""
        if self.fd < 0:
            raise ValueError("the listener is closed")
        cdef unsigned char buf[EVENT_BUFFER_BYTES]
        cdef ssize_t got
        cdef size_t offset, payload_length
        cdef uint16_t msg_type, msg_flags
        cdef const unsigned char *payload
        cdef sd_tcp_counters c
        events = []
        while True:
            got = recv(self.fd, buf, EVENT_BUFFER_BYTES, MSG_DONTWAIT)
            if got < 0:
                err = errno
                if err == EAGAIN:
                    return events
                if err == ENOBUFS:
                    self.overflows += 1
                    continue
                if err == EINTR:
                    continue
                raise SockdiagError(f"recv(sock_diag events) failed: {os.strerror(err)}")
            offset = 0
            while sd_nl_next(buf, got, &offset, &msg_type, &msg_flags, &payload, &payload_length) > 0:
                if sd_diag_parse(payload, payload_length, &c) == 0:
                    events.append(_destroy_event(&c))

    def close(self):
        """Leave the groups and close the socket."""
        if self.fd >= 0:
            close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __dealloc__(self):
        if self.fd >= 0:
            close(self.fd)
