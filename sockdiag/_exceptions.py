"""The exceptions sockdiag raises on purpose, and the pieces every platform
module's errno mapping is built from (wrap_oserror, unsuitable_socket)."""

from __future__ import annotations

import errno
import functools
import os
import _socket  # the C module: `socket` would cost a watch's start 5 ms
from typing import Optional


class SockdiagError(Exception):
    """Root of every error sockdiag raises on purpose."""


class NoSuchProcess(SockdiagError):
    """The process does not exist (or exited while being inspected)."""

    def __init__(self, pid: int, msg: Optional[str] = None) -> None:
        self.pid = pid
        super().__init__(msg or f"no process with pid {pid}")


class AccessDenied(SockdiagError):
    """The caller may not inspect the process or resource."""

    def __init__(self, pid: Optional[int] = None, msg: Optional[str] = None) -> None:
        self.pid = pid
        # Root is not told to run as root (a container's root, a dropped capability).
        hint = (", even as root: a privilege is missing or a security policy refuses" if os.geteuid() == 0
                else ": run as root or as the same user as the process")
        super().__init__(msg or f"not allowed to inspect pid {pid}{hint}")


class NotSupported(SockdiagError):
    """The running platform or kernel cannot do what was asked."""


class UnsuitableSocket(SockdiagError):
    """The fd is closed, is not a socket, or is a socket with no send buffer."""


def wrap_oserror(function, translate):
    """function with the OSError it raises replaced by
    ``translate(err, function name, first argument)``, chained (``from err``).

    Each platform module builds its wrap_exceptions on it, with its own
    translate.  (The microsecond socket calls need none: the core raises
    the platform's exception itself, see _fast.set_socket_exception.)
    """
    name = function.__name__

    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except OSError as err:
            raise translate(err, name, args[0] if args else None) from err
    return functools.wraps(function)(wrapper)


_FAMILY_NAMES = {_socket.AF_UNIX: "UNIX", _socket.AF_INET: "IPv4", _socket.AF_INET6: "IPv6"}
_KIND_NAMES = {_socket.SOCK_STREAM: "stream", _socket.SOCK_DGRAM: "datagram"}


def socket_kind(fd: int) -> tuple[int, int]:
    """(family, type) of fd's socket; (-1, -1) when it cannot be told."""
    try:
        sock = _socket.socket(fileno=fd)  # reads its family and type; detached below
    except OSError:
        return -1, -1
    try:
        return int(sock.family), int(sock.type)
    finally:
        sock.detach()


def describe_socket(fd: int) -> str:
    """What fd is, for messages: "IPv4 datagram socket", "UNIX stream socket"."""
    family, kind = socket_kind(fd)
    return (f"{_FAMILY_NAMES.get(family, f'family {family}')} "
            f"{_KIND_NAMES.get(kind, f'type {kind}')} socket")


def unsuitable_socket(err: OSError) -> SockdiagError:
    """The exception for a failed _fast call on a socket: OSError(errno,
    strerror, fd, None, call), the socket kinds a call refuses having errnos
    of their own (see _fast.pyx).  The messages common to every platform."""
    fd = err.filename
    if fd < 0:
        return UnsuitableSocket("the socket is closed")
    if err.errno == errno.EBADF:
        return UnsuitableSocket(f"fd {fd} is not open")
    if err.errno == errno.ENOTSOCK:
        return UnsuitableSocket(f"fd {fd} is not a socket")
    if err.errno == errno.ENOTCONN:
        return UnsuitableSocket(
            f"fd {fd} is a listening socket: it sends nothing (its queue is the accept backlog)")
    if err.errno == errno.ENOPROTOOPT:
        return UnsuitableSocket(f"fd {fd} is a {describe_socket(fd)}, not a TCP socket")
    if err.errno == errno.EOPNOTSUPP and err.filename2 == "socket_queues":
        return UnsuitableSocket(f"fd {fd} is a {describe_socket(fd)}: sockdiag reads TCP, UDP and UNIX sockets")
    if err.errno == errno.EOPNOTSUPP:
        return UnsuitableSocket(
            f"fd {fd} is a {describe_socket(fd)}: sockdiag splits the send buffer of "
            "TCP, UDP and UNIX stream sockets")
    if err.errno == errno.ENOSYS:
        return NotSupported(f"{err.filename2} does not exist on this platform")
    return UnsuitableSocket(f"fd {fd}: {err.filename2} failed: {err.strerror}")
