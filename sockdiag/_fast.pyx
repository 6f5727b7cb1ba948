# cython: language_level=3, boundscheck=False, wraparound=False
"""sockdiag's one extension: the raw calls and the decoding of what they return.

Only syscalls and decoding live here; the documented API is in the Python
modules.  Platform differences are settled in includes/compat.h, so the code
below branches on the constants SD_LINUX / SD_DARWIN.

Errors are OSError, ValueError and TypeError only; the platform modules turn
them into sockdiag's exceptions (their wrap_exceptions).  A call on a socket
fails with OSError(errno, strerror, fd, None, call): filename is the fd (-1
for a closed socket object), filename2 the call that failed.  The platform
module hands its translation of those to set_socket_exception() once, so
that send_buffer and tcp_info, microsecond calls, need no Python wrapper
(one cost 660 instructions a call, a third of send_buffer's own).  The socket
kinds a call refuses have errnos of their own:
ENOPROTOOPT: the socket has no TCP level (not a TCP socket);
ENOTCONN: a listening socket (it sends nothing);
EOPNOTSUPP: a socket kind whose send buffer sockdiag cannot split;
ENOSYS: the call does not exist on this platform (or this macOS refuses it);
ECONNRESET (macOS): the connection is gone, the kernel keeps no TCP state.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_DECREF
from libc.errno cimport errno, EBADF, ECONNRESET, ENOTSOCK, EINVAL, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, ENOSYS
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memset, memcpy
from libc.limits cimport INT_MAX

from .includes.system cimport *
from .includes.darwin cimport sd_socket_family

from ._common import (
    LIMITS,
    QUEUE_DELAY_BASES,
    SendBuffer,
    SocketQueues,
    TcpInfo,
    SOCKET_TYPES,
    TCP_STATES,
    TCP_CA_STATES,
)
from ._validate import FD

import os
from _socket import socket as socket_type


cdef extern from "Python.h":
    int PyObject_AsFileDescriptor(object o) except -1
    long PyLong_AsLongAndOverflow(object o, int *overflow) except? -1
    PyObject *PyType_GenericAlloc(PyTypeObject *cls, Py_ssize_t nitems)
    PyObject *PyLong_FromLong(long value)

    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset

    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member


# ---------------------------------------------------------------------------
# Building structs.  Structs are frozen slotted classes (_common.FrozenStruct); their
# __init__ costs more than the syscalls being wrapped, so the hot paths
# allocate the instance and store into its slots directly, as __init__ would.

cdef enum:
    MAX_FIELDS = 128

cdef class _Layout:
    cdef object cls  # a struct class (its metaclass is not `type` itself)
    cdef Py_ssize_t nfields
    cdef Py_ssize_t offsets[MAX_FIELDS]
    cdef dict index

    def __cinit__(self, object cls, tuple names):
        cdef Py_ssize_t i
        if len(names) > MAX_FIELDS:
            raise ValueError("too many fields")
        self.cls = cls
        self.nfields = len(names)
        self.index = {}
        for i, name in enumerate(names):
            descr = _slot_descriptor(cls, name)
            self.offsets[i] = (<PyMemberDescrObject *>descr).d_member.offset
            self.index[name] = i

    cdef object new_empty(self):
        """An instance with every slot empty: fill all of them with put() or take()."""
        cdef PyObject *obj = PyType_GenericAlloc(<PyTypeObject *>self.cls, 0)
        if obj == NULL:
            raise MemoryError()
        result = <object>obj
        Py_DECREF(result)
        return result

    cdef object copy(self, object instance):
        """A new instance whose slots hold instance's values (set some after: a changed copy)."""
        cdef Py_ssize_t i
        result = self.new_empty()
        for i in range(self.nfields):
            self.put(result, i, self.get(instance, i))
        return result

    cdef object new(self):
        """An instance with every slot set to None."""
        result = self.new_empty()
        cdef Py_ssize_t i
        for i in range(self.nfields):
            self.put(result, i, None)
        return result

    cdef inline void put(self, object instance, Py_ssize_t i, object value) noexcept:
        cdef PyObject **slot = <PyObject **>((<char *><PyObject *>instance) + self.offsets[i])
        Py_INCREF(value)
        if slot[0] != NULL:
            Py_DECREF(<object>slot[0])
        slot[0] = <PyObject *>value

    cdef inline object get(self, object instance, Py_ssize_t i):
        return <object>(<PyObject **>((<char *><PyObject *>instance) + self.offsets[i]))[0]

    cdef inline void take(self, object instance, Py_ssize_t i, PyObject *value):
        """Store a new reference into an empty slot (no refcount traffic)."""
        (<PyObject **>((<char *><PyObject *>instance) + self.offsets[i]))[0] = value


def _slot_descriptor(object cls, str name):
    for klass in cls.__mro__:
        descr = klass.__dict__.get(name)
        if descr is not None and type(descr).__name__ == "member_descriptor":
            return descr
    raise TypeError(f"{cls.__name__}.{name} is not a slot")


cdef tuple _LIMIT_NAMES = LIMITS
cdef tuple _BASIS_NAMES = QUEUE_DELAY_BASES


cdef object _NOT_STALLED = 0.0


cdef void put_drain(_Layout layout, object instance, Py_ssize_t delay_index, Py_ssize_t limit_index,
                    Py_ssize_t basis_index, Py_ssize_t stalled_index, const sd_drain *drain) noexcept:
    """sd_snapshot_drain's verdict into a struct's slots (an index of -1: no such slot),
    as _common.snapshot_drain gives it."""
    if drain.queue_delay_s == drain.queue_delay_s:  # not NAN
        layout.put(instance, delay_index, drain.queue_delay_s)
    if limit_index >= 0:
        layout.put(instance, limit_index, _LIMIT_NAMES[drain.limited_by])
    if basis_index >= 0:
        layout.put(instance, basis_index, _BASIS_NAMES[drain.basis])
    if stalled_index >= 0 and drain.basis == SD_BASIS_EMPTY:
        layout.put(instance, stalled_index, _NOT_STALLED)


cdef _Layout SEND_BUFFER = _Layout(SendBuffer, ("size", "unacked", "unsent", "free"))
cdef _Layout TCP_INFO = _Layout(TcpInfo, TcpInfo._fields)


cdef object _other_send_buffer(long size, object unacked, object unsent, long free):
    """A SendBuffer of a UDP or UNIX socket: one of unacked and unsent is None."""
    instance = SEND_BUFFER.new_empty()
    SEND_BUFFER.take(instance, 0, PyLong_FromLong(size))
    SEND_BUFFER.put(instance, 1, unacked)
    SEND_BUFFER.put(instance, 2, unsent)
    SEND_BUFFER.take(instance, 3, PyLong_FromLong(free if free > 0 else 0))
    return instance


cdef object _tcp_send_buffer(long size, long unacked, long unsent, long free):
    """A SendBuffer of a TCP socket: every field known."""
    instance = SEND_BUFFER.new_empty()
    SEND_BUFFER.take(instance, 0, PyLong_FromLong(size))
    SEND_BUFFER.take(instance, 1, PyLong_FromLong(unacked if unacked > 0 else 0))
    SEND_BUFFER.take(instance, 2, PyLong_FromLong(unsent))
    SEND_BUFFER.take(instance, 3, PyLong_FromLong(free if free > 0 else 0))
    return instance


# ---------------------------------------------------------------------------
# Errors


cdef extern from *:
    """
    /* CPython's socket objects keep their fd right after the object header
     * (Modules/socketmodule.h: PySocketSockObject.sock_fd, an int on POSIX). */
    typedef struct { PyObject_HEAD int sock_fd; } sd_socket_object;
    """
    ctypedef struct sd_socket_object:
        int sock_fd


cdef type _SOCKET_TYPE = socket_type


cdef int _fileno(object sock_or_fd) except -1:
    """The fd of a socket object or an int; a closed socket object is EBADF on fd -1.

    An int outside the fds a C int holds, or a bool, is refused by
    sockdiag._validate.FD (ValueError, TypeError).
    """
    cdef int fd
    cdef int overflow = 0
    cdef long value
    if isinstance(sock_or_fd, _SOCKET_TYPE):
        # Read directly: the fileno() method call is a tenth of send_buffer's cost.
        fd = (<sd_socket_object *><PyObject *>sock_or_fd).sock_fd
    elif isinstance(sock_or_fd, int):
        value = PyLong_AsLongAndOverflow(sock_or_fd, &overflow)
        if overflow or not 0 <= value <= INT_MAX or type(sock_or_fd) is bool:
            FD.check(sock_or_fd, "fd")  # raises
        fd = <int>value
    else:
        try:
            fd = PyObject_AsFileDescriptor(sock_or_fd)
        except ValueError:
            fd = -1
    if fd < 0:
        raise _socket_error(-1, EBADF, None)
    return fd


cdef int _getsockopt_int(int fd, int level, int name, int *value) noexcept nogil:
    cdef socklen_t length = sizeof(int)
    return getsockopt(fd, level, name, value, &length)


cdef object _socket_exception = None


def set_socket_exception(translate):
    """Have the calls on a socket raise translate(their OSError), chained to it.

    translate is the platform module's errno mapping (None: the OSError
    itself); the mapping stays there, only its call moves here.
    """
    global _socket_exception
    _socket_exception = translate


cdef object _socket_error(int fd, int err, str call):
    """The exception of a call on fd that failed with errno err (see the module docstring)."""
    error = OSError(err, os.strerror(err), fd, None, call)
    if _socket_exception is None:
        return error
    translated = _socket_exception(error)
    translated.__cause__ = error
    return translated


cdef object _tcp_level_error(int fd, int err, str call):
    """A TCP-level socket option refused: EBADF, ENOTSOCK and ECONNRESET as they
    are, anything else means the socket has no TCP level (ENOPROTOOPT)."""
    if err != EBADF and err != ENOTSOCK and err != ECONNRESET:
        err = ENOPROTOOPT
    return _socket_error(fd, err, call)


# ---------------------------------------------------------------------------
# Send buffer


def send_buffer(sock_or_fd):
    """Split of a socket's send buffer, in bytes: a SendBuffer.

    sock_or_fd is a socket object or a file descriptor you own.  TCP:
    unacked (sent, not yet acknowledged), unsent (queued in the kernel), free
    (room before a writer blocks, never negative) and size.  Linux: SIOCOUTQ,
    SIOCOUTQNSD and SO_MEMINFO; macOS: SO_SNDBUF and one private TCP_INFO
    (tcpi_snd_sbbytes, tcpi_txunacked).  UDP and UNIX stream sockets give what the
    kernel can tell and None for the rest (macOS refuses UNIX stream sockets:
    their bytes wait in the peer's receive buffer, out of the sender's view).

    Raises UnsuitableSocket for a closed fd, a non-socket, a listening socket
    or a kind of socket it cannot split, (macOS) a connection the kernel has
    already torn down; NotSupported on a macOS that refuses its private
    TCP_INFO.  (The core raises OSError with the errnos in this module's
    docstring; the platform module makes sockdiag's exceptions.)
    """
    cdef int fd = _fileno(sock_or_fd)
    cdef int queued = 0, unsent = 0, sndbuf = 0
    cdef uint32_t mem[16]
    cdef socklen_t length = sizeof(mem)
    cdef unsigned char info[512]
    cdef socklen_t info_length = sizeof(info)
    if SD_LINUX:
        if (ioctl(fd, SIOCOUTQNSD, &unsent) == 0
                and ioctl(fd, SIOCOUTQ, &queued) == 0
                and getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &length) == 0):
            # The two ioctls are not one snapshot: an ACK between them can
            # make queued < unsent for a moment.
            return _tcp_send_buffer(
                mem[SD_MEMINFO_SNDBUF],
                queued - unsent,
                unsent,
                <long>mem[SD_MEMINFO_SNDBUF] - <long>mem[SD_MEMINFO_WMEM_QUEUED])
        return _send_buffer_other(fd, errno)
    # macOS: the private tcp_info holds both the send buffer's count
    # (tcpi_snd_sbbytes = sb_cc = SO_NWRITE) and tcpi_txunacked: one moment.
    if _getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf) != 0:
        raise _socket_error(fd, errno, "getsockopt(SO_SNDBUF)")
    if getsockopt(fd, IPPROTO_TCP, SD_TCP_INFO_OPT, info, &info_length) != 0:
        err = errno
        darwin_raise_if_gone(fd, err, "getsockopt(TCP_INFO)")
        return _send_buffer_other(fd, err)
    instance = _darwin_split(info, info_length, sndbuf)
    # None for a listening socket (it has a tcp_info too) or a short struct.
    return instance if instance is not None else _send_buffer_other(fd, 0)


cdef struct _SocketIdentity:
    int type
    int listening
    int family
    bint inet  # AF_INET or AF_INET6
    int protocol


cdef int _identify_socket(int fd, _SocketIdentity *identity) except -1:
    """A socket's type, whether it listens, its address family and protocol
    (0 where the kernel refuses the option).  OSError (EBADF, ENOTSOCK) from
    SO_TYPE.  macOS has neither SO_DOMAIN nor SO_PROTOCOL: the family comes
    from getsockname (-1 when it fails), the protocol is TCP for a stream
    and UDP otherwise."""
    identity.type = identity.listening = identity.family = identity.protocol = 0
    if _getsockopt_int(fd, SOL_SOCKET, SO_TYPE, &identity.type) != 0:
        raise _socket_error(fd, errno, "getsockopt(SO_TYPE)")
    _getsockopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN, &identity.listening)
    if SD_LINUX:
        _getsockopt_int(fd, SOL_SOCKET, SO_DOMAIN, &identity.family)
        _getsockopt_int(fd, SOL_SOCKET, SO_PROTOCOL, &identity.protocol)
    else:
        identity.family = sd_socket_family(fd)
        identity.protocol = IPPROTO_TCP if identity.type == SOCK_STREAM else IPPROTO_UDP
    identity.inet = identity.family == AF_INET or identity.family == AF_INET6
    return 0


cdef object _send_buffer_other(int fd, int err):
    """send_buffer for what the TCP fast path refused: UDP, UNIX, LISTEN, errors."""
    cdef int queued = 0, sndbuf = 0, nwrite = 0
    cdef _SocketIdentity identity
    cdef uint32_t mem[16]
    cdef socklen_t length = sizeof(mem)
    _identify_socket(fd, &identity)
    if identity.listening:
        raise _socket_error(fd, ENOTCONN, "getsockopt(SO_ACCEPTCONN)")
    if SD_LINUX:
        if ((identity.family == AF_UNIX and identity.type == SOCK_STREAM)
                or (identity.inet and identity.protocol == IPPROTO_UDP)):
            if (ioctl(fd, SIOCOUTQ, &queued) != 0
                    or getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &length) != 0):
                raise _socket_error(fd, errno, "ioctl(SIOCOUTQ)")
            # Outside TCP the kernel charges the send side to wmem_alloc.
            free = <long>mem[SD_MEMINFO_SNDBUF] - <long>mem[SD_MEMINFO_WMEM_ALLOC]
            if identity.family == AF_UNIX:
                # Bytes in the peer's receive queue, not yet read by it.
                return _other_send_buffer(mem[SD_MEMINFO_SNDBUF], queued, None, free)
            return _other_send_buffer(mem[SD_MEMINFO_SNDBUF], None, queued, free)
    else:
        # A UNIX stream socket is refused (EOPNOTSUPP, below): uipc_send
        # appends straight to the peer's receive buffer, the sender's sb_cc
        # (SO_NWRITE) stays 0 and only the peer sees the bytes.
        if identity.inet:
            if identity.type == SOCK_STREAM:
                raise _socket_error(fd, ENOSYS, "getsockopt(TCP_INFO)")
            if identity.type == SOCK_DGRAM:
                if (_getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf) != 0
                        or _getsockopt_int(fd, SOL_SOCKET, SD_SO_NWRITE, &nwrite) != 0):
                    raise _socket_error(fd, errno, "getsockopt(SO_NWRITE)")
                return _other_send_buffer(sndbuf, None, nwrite, sndbuf - nwrite)
    raise _socket_error(fd, EOPNOTSUPP, None)


# ---------------------------------------------------------------------------
# Queues of any socket


def socket_queues(sock_or_fd):
    """A socket's queues, buffers and drops, in bytes: a SocketQueues
    (see its documentation for each field, per kind and platform).

    OSError: EBADF, ENOTSOCK; EOPNOTSUPP for a socket that is neither TCP,
    UDP nor UNIX.
    """
    cdef int fd = _fileno(sock_or_fd)
    cdef int inq = 0, outq = 0, rcvbuf = 0, sndbuf = 0
    cdef _SocketIdentity identity
    cdef uint32_t mem[16]
    cdef socklen_t length = sizeof(mem)
    _identify_socket(fd, &identity)
    if identity.family == AF_UNIX:
        kind = "unix"
    elif identity.inet and identity.type == SOCK_STREAM and identity.protocol == IPPROTO_TCP:
        kind = "tcp"
    elif identity.inet and identity.type == SOCK_DGRAM and identity.protocol == IPPROTO_UDP:
        kind = "udp"
    else:
        raise _socket_error(fd, EOPNOTSUPP, "socket_queues")
    if SD_LINUX:
        if getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &length) != 0:
            raise _socket_error(fd, errno, "getsockopt(SO_MEMINFO)")
        if identity.listening:
            return SocketQueues(kind, None, None, mem[SD_MEMINFO_RCVBUF], mem[SD_MEMINFO_SNDBUF],
                                mem[SD_MEMINFO_DROPS])
        if ioctl(fd, SIOCOUTQ, &outq) != 0:
            raise _socket_error(fd, errno, "ioctl(SIOCOUTQ)")
        # SIOCINQ of a UDP socket is the next datagram's size; its queue is the memory.
        if kind != "udp" and ioctl(fd, SIOCINQ, &inq) != 0:
            raise _socket_error(fd, errno, "ioctl(SIOCINQ)")
        return SocketQueues(kind, mem[SD_MEMINFO_RMEM_ALLOC] if kind == "udp" else inq, outq,
                            mem[SD_MEMINFO_RCVBUF], mem[SD_MEMINFO_SNDBUF], mem[SD_MEMINFO_DROPS])
    if (_getsockopt_int(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf) != 0
            or _getsockopt_int(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf) != 0):
        raise _socket_error(fd, errno, "getsockopt(SO_RCVBUF)")
    if identity.listening:
        return SocketQueues(kind, None, None, rcvbuf, sndbuf, None)
    if (_getsockopt_int(fd, SOL_SOCKET, SD_SO_NREAD, &inq) != 0
            or _getsockopt_int(fd, SOL_SOCKET, SD_SO_NWRITE, &outq) != 0):
        raise _socket_error(fd, errno, "getsockopt(SO_NREAD)")
    return SocketQueues(kind, inq, outq, rcvbuf, sndbuf, None)


# ---------------------------------------------------------------------------
# TCP_INFO


def tcp_info(sock_or_fd):
    """Linux TCP_INFO of a socket as a TcpInfo (see sockdiag.tcp_info).

    OSError: ENOPROTOOPT for a socket that is not TCP, ENOSYS off Linux."""
    cdef int fd = _fileno(sock_or_fd)
    cdef unsigned char buf[512]
    cdef socklen_t length = sizeof(buf)
    if not SD_LINUX:
        raise _socket_error(fd, ENOSYS, "getsockopt(TCP_INFO)")
    if getsockopt(fd, IPPROTO_TCP, SD_TCP_INFO_OPT, buf, &length) != 0:
        raise _tcp_level_error(fd, errno, "getsockopt(TCP_INFO)")
    return _decode_linux_tcp_info(buf, length)


def decode_tcp_info_linux(const unsigned char[::1] buf not None):
    """Decode a Linux struct tcp_info of any kernel's length; ValueError if too short."""
    if buf.shape[0] == 0:
        raise ValueError("tcp_info buffer is empty")
    return _decode_linux_tcp_info(&buf[0], buf.shape[0])


cdef object _decode_linux_tcp_info(const unsigned char *buf, Py_ssize_t length):
    cdef sd_linux_tcp_info head
    cdef const sd_field *field
    cdef size_t i
    cdef uint64_t value
    if length < 8:
        raise ValueError(f"tcp_info of {length} bytes: the shortest any kernel returns is 8")
    length = sd_tcp_info_length(length)
    memcpy(&head, buf, 8)
    instance = TCP_INFO.new()
    TCP_INFO.put(instance, TI_STATE, _name(TCP_STATES, head.tcpi_state))
    TCP_INFO.put(instance, TI_CA_STATE, _name(TCP_CA_STATES, head.tcpi_ca_state, 0))
    TCP_INFO.put(instance, TI_RETRANSMITS, head.tcpi_retransmits)
    TCP_INFO.put(instance, TI_PROBES, head.tcpi_probes)
    TCP_INFO.put(instance, TI_BACKOFF, head.tcpi_backoff)
    TCP_INFO.put(instance, TI_OPTIONS, head.tcpi_options)
    TCP_INFO.put(instance, TI_SND_WSCALE, sd_tcpi_snd_wscale(&head))
    TCP_INFO.put(instance, TI_RCV_WSCALE, sd_tcpi_rcv_wscale(&head))
    TCP_INFO.put(instance, TI_DELIVERY_RATE_APP_LIMITED, bool(sd_tcpi_app_limited(&head)))
    TCP_INFO.put(instance, TI_FASTOPEN_CLIENT_FAIL, sd_tcpi_fastopen_client_fail(&head))
    for i in range(SD_LINUX_TCP_INFO_NFIELDS):
        field = &sd_linux_tcp_info_fields[i]
        if field.offset + field.size > length:
            break
        value = sd_read_uint(buf + field.offset, field.size)
        if field.kind == SD_FIELD_RATE:
            if value == <uint64_t>-1:
                TCP_INFO.put(instance, LINUX_FIELD_SLOTS[i], None)
            elif value <= (<uint64_t>-1) >> 3:
                TCP_INFO.put(instance, LINUX_FIELD_SLOTS[i], value * 8)
            else:  # 8 x such a rate does not fit a u64: Python ints
                TCP_INFO.put(instance, LINUX_FIELD_SLOTS[i], <object>value * 8)
        else:
            TCP_INFO.put(instance, LINUX_FIELD_SLOTS[i], value)
    return instance


cdef object _name(tuple names, unsigned int number, unsigned int first=1):
    if first <= number < <unsigned int>len(names):
        return names[number]
    return f"UNKNOWN({number})"


# Slots of the first eight bytes' fields, looked up once rather than per call.
cdef Py_ssize_t TI_STATE = TCP_INFO.index["state"]
cdef Py_ssize_t TI_CA_STATE = TCP_INFO.index["ca_state"]
cdef Py_ssize_t TI_RETRANSMITS = TCP_INFO.index["retransmits"]
cdef Py_ssize_t TI_PROBES = TCP_INFO.index["probes"]
cdef Py_ssize_t TI_BACKOFF = TCP_INFO.index["backoff"]
cdef Py_ssize_t TI_OPTIONS = TCP_INFO.index["options"]
cdef Py_ssize_t TI_SND_WSCALE = TCP_INFO.index["snd_wscale"]
cdef Py_ssize_t TI_RCV_WSCALE = TCP_INFO.index["rcv_wscale"]
cdef Py_ssize_t TI_DELIVERY_RATE_APP_LIMITED = TCP_INFO.index["delivery_rate_app_limited"]
cdef Py_ssize_t TI_FASTOPEN_CLIENT_FAIL = TCP_INFO.index["fastopen_client_fail"]


cdef Py_ssize_t LINUX_FIELD_SLOTS[MAX_FIELDS]
for _i in range(SD_LINUX_TCP_INFO_NFIELDS):
    LINUX_FIELD_SLOTS[_i] = TCP_INFO.index[sd_linux_tcp_info_fields[_i].name.decode()]


def limit_tcp_info_length(size_t length):
    """Decode at most length bytes of every tcp_info from now on, as a kernel
    whose struct is that long would return (sockdiag's assumed kernel)."""
    global sd_tcp_info_length_limit
    sd_tcp_info_length_limit = length


def linux_tcp_info_fields():
    """(attribute name, offset, size) of each whole-byte field after the first 8 bytes."""
    return [(sd_linux_tcp_info_fields[i].name.decode(),
             sd_linux_tcp_info_fields[i].offset,
             sd_linux_tcp_info_fields[i].size)
            for i in range(SD_LINUX_TCP_INFO_NFIELDS)]


# ---------------------------------------------------------------------------
# TCP_NOTSENT_LOWAT


def notsent_lowat(sock_or_fd):
    """The socket's own TCP_NOTSENT_LOWAT (0: none set on the socket)."""
    cdef int fd = _fileno(sock_or_fd)
    cdef int value = 0
    if _getsockopt_int(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value) != 0:
        raise _tcp_level_error(fd, errno, "getsockopt(TCP_NOTSENT_LOWAT)")
    return <unsigned int>value


def set_notsent_lowat(sock_or_fd, unsigned int nbytes):
    """Set TCP_NOTSENT_LOWAT on the socket (0: none, the system default applies)."""
    cdef int fd = _fileno(sock_or_fd)
    cdef int value = <int>nbytes
    if setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &value, sizeof(int)) != 0:
        if errno == EINVAL:
            raise ValueError(f"TCP_NOTSENT_LOWAT {nbytes} refused by the kernel")
        raise _tcp_level_error(fd, errno, "setsockopt(TCP_NOTSENT_LOWAT)")
include "_fast_netlink.pxi"
include "_fast_diag.pxi"
include "_fast_darwin.pxi"
include "_fast_rtnl.pxi"
include "_fast_sampler.pxi"
include "_fast_events.pxi"
include "_fast_trace.pxi"
include "_fast_json.pxi"
