"""sockdiag: where the bytes of a TCP connection are.

The documented API is here; platform modules (_linux, _darwin) are thin and
_fast holds the syscalls.  Availability notes say where a name exists.
"""

from __future__ import annotations

from typing import Iterable, Optional

from ._common import (
    LINUX,
    MACOS,
    AccessDenied,
    NoSuchProcess,
    NotSupported,
    Record,
    SendBuffer,
    SocketInfo,
    SockdiagError,
    TcpInfo,
    UnsuitableSocket,
)

from . import decode

if LINUX:
    from . import _linux as _platform
elif MACOS:
    from . import _darwin as _platform
else:  # pragma: no cover
    raise ImportError("sockdiag supports Linux and macOS")

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "NoSuchProcess",
    "NotSupported",
    "Record",
    "SendBuffer",
    "SockdiagError",
    "SocketInfo",
    "TcpInfo",
    "UnsuitableSocket",
    "decode",
    "get_notsent_lowat",
    "process_sockets",
    "send_buffer",
    "set_notsent_lowat",
    "tcp_info",
]

# The hot path is exported without a Python wrapper around it: one call costs
# about a microsecond and a wrapper would add a tenth to that.  Its docstring
# is in _fast.pyx.
send_buffer = _platform.send_buffer


def tcp_info(sock_or_fd) -> TcpInfo:
    """The kernel's TCP_INFO of a TCP socket you own, as a TcpInfo.

    Every field the running kernel returned is set (decoded by the length it
    returned; older kernels give fewer fields, the rest are ``None``).
    Linux: ``getsockopt(TCP_INFO)``.  macOS: the private ``tcp_info`` plus the
    public ``TCP_CONNECTION_INFO``.
    Raises UnsuitableSocket for a closed fd, a non-socket or a non-TCP socket.
    """
    return _platform.tcp_info(sock_or_fd)


def get_notsent_lowat(sock) -> Optional[int]:
    """The TCP_NOTSENT_LOWAT in effect for a TCP socket, in bytes; None when off.

    Linux: the socket's own value, else the namespace's
    ``net.ipv4.tcp_notsent_lowat``.  macOS: the socket's value (0 is off).
    """
    return _platform.get_notsent_lowat(sock)


def set_notsent_lowat(sock, nbytes: Optional[int]) -> None:
    """Set TCP_NOTSENT_LOWAT on a TCP socket: writable only while unsent < nbytes.

    ``None`` removes the socket's own limit (Linux: the sysctl applies again;
    macOS: off).  Raises ValueError for a negative size.
    """
    if nbytes is not None and nbytes < 0:
        raise ValueError(f"TCP_NOTSENT_LOWAT must be >= 0, not {nbytes}")
    _platform.set_notsent_lowat(sock, nbytes)


def process_sockets(pid: int, states: Optional[Iterable[str]] = None) -> list[SocketInfo]:
    """Every TCP socket (IPv4 and IPv6) process pid holds, seen from outside it.

    One SocketInfo per socket: fd, addresses, state, the send-buffer split
    (``unacked``, ``unsent``, ``free``, ``sndbuf``: the definitions of
    send_buffer), ``send_queue`` (unacked + unsent, ss's Send-Q; ``None`` for a
    listening socket, whose queue is its accept backlog), ``recv_queue``,
    ``queue_delay_s`` (unsent / delivery rate: how long a byte written now
    waits before it is sent; ``None`` when unknown), the congestion control
    and the full TcpInfo.  ``states`` keeps only sockets in these TCP states
    ("ESTABLISHED", "listen", "close-wait"…; filtered in the kernel).

    Linux: one NETLINK_SOCK_DIAG dump per address family matched against the
    ``socket:[inode]`` links of ``/proc/<pid>/fd``, in the process's own
    network namespace (for a process in a container that needs root).
    Availability: Linux, macOS.
    Raises NoSuchProcess (no such pid, or it exited meanwhile), AccessDenied
    (root or the process's own user is needed), ValueError (unknown state).
    """
    return _platform.process_sockets(pid, states)
