# sock_diag for per-process accounting: a counters-only dump of every TCP
# socket, the socket-destroy notifications (as `ss -E`) and the scan of
# /proc/<pid>/fd links.  The messages go through the netlink engine
# (_fast_netlink.pxi) and the one inet_diag_msg parser (diag_parse).  Linux
# only; elsewhere the calls raise OSError(ENOSYS).

from libc.errno cimport errno, EACCES, EAGAIN, ENOBUFS
from libc.stdint cimport uint64_t
from libc.stdlib cimport free
from libc.string cimport memset
from .includes.netlink cimport *
from .includes.diag cimport *

from ._common import TcpDestroyEvent

cdef enum:
    # Every state but TIME_WAIT (6) and NEW_SYN_RECV (12): those are
    # mini-sockets with no tcp_info and no bytes of their own.
    ACCOUNTED_STATES = 0xFFE & ~(1 << 6)
    # Room for bursts of destroy notifications between two drains.
    EVENT_RCVBUF_BYTES = 32 << 20


cdef inline object _field(uint64_t value):
    return None if value == SD_FIELD_ABSENT else value


cdef object _destroy_event(const sd_diag_message *m):
    tcp = _decode_linux_tcp_info(m.info, m.info_length) if m.info_length >= 8 else None
    return TcpDestroyEvent(
        sd_diag_cookie(m), diag_family_name(m),
        _LOCAL_ADDRESS.address(m.msg.idiag_family, m.msg.id.idiag_src), ntohs(m.msg.id.idiag_sport),
        _REMOTE_ADDRESS.address(m.msg.idiag_family, m.msg.id.idiag_dst), ntohs(m.msg.id.idiag_dport),
        _name(TCP_STATES, m.msg.idiag_state), tcp)


cdef int _destroy_message(object out, const unsigned char *payload, size_t length) except -1:
    """nl_handler: the TcpDestroyEvent of a notification."""
    cdef sd_diag_message m
    diag_parse(payload, length, &m)
    (<list>out).append(_destroy_event(&m))
    return 0


def decode_inet_diag_msg(const unsigned char[::1] buf not None):
    """Decode one SOCK_DIAG_BY_FAMILY message payload (inet_diag_msg + attributes).

    A TcpDestroyEvent, or ValueError when the buffer is truncated or its
    attributes are malformed (see sockdiag.decode.tcp_destroy_event_linux).
    """
    cdef list out = []
    if buf.shape[0] == 0:
        raise ValueError("sock_diag message of 0 bytes: shorter than inet_diag_msg")
    _destroy_message(out, &buf[0], buf.shape[0])
    return out[0]


cdef int _counters_message(object out, const unsigned char *payload, size_t length) except -1:
    """nl_handler: a socket's byte counters, or a listener, into (sockets, listeners)."""
    cdef sd_diag_message m
    cdef uint64_t notsent
    cdef sd_drain drain
    diag_parse(payload, length, &m)
    if m.info == NULL:
        return 0
    local_address = (<const char *>m.msg.id.idiag_src)[:16]
    waiting = None
    notsent = sd_diag_info_field(&m, SD_TCPI_NOTSENT_OFFSET, 4)
    if notsent != SD_FIELD_ABSENT and notsent > 0:
        drain = sd_snapshot_drain(notsent, m.msg.idiag_wqueue - notsent if m.msg.idiag_wqueue > notsent else 0,
                                  SD_FIELD_ABSENT, m.info, m.info_length)
        waiting = (notsent, _LIMIT_NAMES[drain.limited_by])
    if m.msg.idiag_state == SD_TCP_LISTEN:
        (<list>(<tuple>out)[1]).append((ntohs(m.msg.id.idiag_sport), local_address, m.msg.idiag_inode))
    else:
        (<list>(<tuple>out)[0]).append((
            sd_diag_cookie(&m), m.msg.idiag_inode,
            (_field(sd_diag_info_field(&m, SD_TCPI_BYTES_SENT_OFFSET, 8)),
             _field(sd_diag_info_field(&m, SD_TCPI_BYTES_ACKED_OFFSET, 8)),
             _field(sd_diag_info_field(&m, SD_TCPI_BYTES_RECEIVED_OFFSET, 8)),
             _field(sd_diag_info_field(&m, SD_TCPI_BYTES_RETRANS_OFFSET, 8))),
            ntohs(m.msg.id.idiag_sport), local_address, waiting))
    return 0


def tcp_counters(int pid=0):
    """Byte counters of every TCP socket of pid's network namespace (0: the caller's).

    One SOCK_DIAG_BY_FAMILY dump per family with INET_DIAG_INFO.  Returns
    (sockets, listeners): sockets is a list of (cookie, inode, (bytes_sent,
    bytes_acked, bytes_received, bytes_retrans), local port, local address,
    waiting) for every socket holding tcp_info (counters a kernel does not
    return are None; inode is 0 once the process has closed the socket;
    waiting is None, or (unsent bytes, limited_by of sd_snapshot_drain) for a
    socket with bytes unsent); listeners is a
    list of (local port, local address, inode) of LISTEN sockets.  Local
    addresses are the kernel's 16 raw bytes (IPv4: 4 bytes, then zeros).  A
    dump the kernel marks interrupted (the table changed under it) is taken
    again.  OSError for a failed call (EPERM with filename /proc/<pid>/ns/net:
    entering another namespace needs CAP_SYS_ADMIN).
    """
    cdef int fd = sd_diag_socket(pid)
    if fd < 0:
        if pid:
            raise OSError(errno, os.strerror(errno), f"/proc/{pid}/ns/net")
        raise OSError(errno, os.strerror(errno), None, None, "socket(NETLINK_SOCK_DIAG)")
    out = ([], [])
    try:
        diag_dump(fd, AF_INET, IPPROTO_TCP, ACCOUNTED_STATES, 1 << (SD_INET_DIAG_INFO - 1), None,
                  _counters_message, out, NULL)
        diag_dump(fd, AF_INET6, IPPROTO_TCP, ACCOUNTED_STATES, 1 << (SD_INET_DIAG_INFO - 1), None,
                  _counters_message, out, NULL)
    finally:
        close(fd)
    return out


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
            raise OSError(errno, os.strerror(errno), "/proc")
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


cdef bint _exiting(long pid):
    """A zombie or exiting process (whose fd table refuses even root), gone, or unreadable."""
    cdef int state = sd_process_state(pid)
    return state < 0 or _state_gone(state)


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
    NETLINK_SOCK_DIAG socket, as `ss -E` does, for the network namespace
    of pid (0: the caller's; another needs CAP_SYS_ADMIN).  Any user may join them: the kernel creates the sock_diag
    netlink socket with NL_CFG_F_NONROOT_RECV (net/core/sock_diag.c).
    ``drain()`` returns the TcpDestroyEvent of every socket freed since the
    last call.  ``overflows`` counts the times the kernel dropped
    notifications because they came faster than they were read (ENOBUFS);
    then some closed sockets are missed.  ``receive_buffer_bytes`` is room
    for notifications between two drains (set past the system maximum when
    the caller may).  Raises OSError: EPERM when a security policy refuses
    the subscription, ENOSYS off Linux.
    """

    cdef int fd
    cdef nl_buffer buf
    cdef readonly int overflows

    def __cinit__(self, int receive_buffer_bytes=EVENT_RCVBUF_BYTES, int pid=0):
        self.fd = -1
        self.overflows = 0
        memset(&self.buf, 0, sizeof(self.buf))
        cdef int fd = sd_diag_socket(pid)
        if fd < 0:
            if pid:
                raise OSError(errno, os.strerror(errno), f"/proc/{pid}/ns/net")
            raise OSError(errno, os.strerror(errno), None, None, "socket(NETLINK_SOCK_DIAG)")
        if sd_netlink_join(fd, (1u << (SD_SKNLGRP_INET_TCP_DESTROY - 1))
                           | (1u << (SD_SKNLGRP_INET6_TCP_DESTROY - 1))) != 0:
            err = errno
            close(fd)
            raise OSError(err, os.strerror(err), None, None, "bind(sock_diag destroy groups)")
        cdef int size = receive_buffer_bytes
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(int)) != 0:
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(int))
        self.fd = fd

    def fileno(self):
        """The netlink socket's fd (readable when notifications are waiting)."""
        return self.fd

    def drain(self):
        """TcpDestroyEvent of every TCP socket freed since the last call, oldest first."""
        cdef ssize_t received
        if self.fd < 0:
            raise ValueError("the listener is closed")
        events = []
        while True:
            self.buf.length = 0
            received = nl_receive(self.fd, &self.buf, False)
            if received == -EAGAIN:
                return events
            if received == -ENOBUFS:
                self.overflows += 1
                continue
            nl_walk(self.buf.data, received, SD_SOCK_DIAG_BY_FAMILY, _destroy_message, events, False)

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
        free(self.buf.data)
