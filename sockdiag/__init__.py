"""sockdiag: where the bytes of a TCP connection are.

The documented API is here; platform modules (_linux, _darwin) are thin and
_fast holds the syscalls.  Availability notes say where a name exists.
"""

from __future__ import annotations

import time as _time
from typing import Iterable, Optional

from ._common import (
    LINUX,
    MACOS,
    SOCKET_KINDS,
    BudgetExceeded,
    FdHeadroom,
    FrozenStruct,
    InterfaceCounters,
    InterfaceRates,
    LinkStats64,
    ProcessTraffic,
    RecordingSummary,
    Sample,
    SendBuffer,
    SocketInfo,
    SocketQueues,
    TcpDestroyEvent,
    TcpInfo,
    TrafficSample,
    UserSpaceNetworking,
)
from ._exceptions import AccessDenied, NoSuchProcess, NotSupported, SockdiagError, UnsuitableSocket
from . import _platform
from ._validate import NOTSENT_LOWAT, PID, SAMPLE_INTERVAL
# record / record_stream / InstrumentedSocket are documented where they are
# defined (sockdiag/recording.py); they are already thin.
from .recording import InstrumentedSocket, Recording, record, record_stream

__version__ = "0.1.0"

__all__ = [
    # errors
    "AccessDenied",
    "NoSuchProcess",
    "NotSupported",
    "SockdiagError",
    "UnsuitableSocket",
    # structs (frozen values)
    "BudgetExceeded",
    "FdHeadroom",
    "InterfaceCounters",
    "InterfaceRates",
    "LinkStats64",
    "ProcessTraffic",
    "FrozenStruct",
    "RecordingSummary",
    "Sample",
    "SendBuffer",
    "SocketInfo",
    "SocketQueues",
    "TcpDestroyEvent",
    "TcpInfo",
    "TrafficSample",
    "UserSpaceNetworking",
    # a socket you own
    "get_notsent_lowat",
    "send_buffer",
    "socket_queues",
    "set_notsent_lowat",
    "tcp_info",
    "InstrumentedSocket",
    "LowatTuner",
    "Recording",
    "record",
    "record_stream",
    # other processes and the machine
    "SOCKET_KINDS",
    "fd_headroom",
    "interface_rates",
    "interfaces",
    "process_sockets",
    "sockets_of_processes",
    # pure decoders
    "decode",
]

# Imported on first use (PEP 562), so that `sockdiag watch` starts without
# them: {public name: (module, attribute or None for the module itself)}.
_LAZY_NAMES = {"decode": ("decode", None), "LowatTuner": ("tuner", "LowatTuner"),
               "interface_rates": ("_watch", "interface_rates")}

# The hot path is the core's own function (it raises sockdiag's exceptions
# through _fast.set_socket_exception): one call costs about a microsecond,
# and a Python wrapper would add a third.  Its docstring is in _fast.pyx.
send_buffer = _platform.send_buffer
socket_queues = _platform.socket_queues


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
    macOS: off).  nbytes is an int from 0 to 2**32 - 1 (the kernel's u32;
    Linux reads 2**32 - 1 as off): ValueError outside, TypeError for a
    float or bool.
    """
    if nbytes is not None:
        nbytes = NOTSENT_LOWAT.check(nbytes, "nbytes")
    _platform.set_notsent_lowat(sock, nbytes)


def process_sockets(pid: int, states: Optional[Iterable[str]] = None,
                    kinds: Iterable[str] = ("tcp",)) -> list[SocketInfo]:
    """Every socket of the kinds asked for that process pid holds, seen from outside it.

    ``kinds``: "tcp", "udp" (both over IPv4 and IPv6) and "unix" (stream,
    datagram and seqpacket), a str or an iterable of them; TCP alone by
    default.  Each SocketInfo's ``kind`` says which it is; what each field means
    per kind is in SocketInfo's documentation.

    One SocketInfo per socket: fd, addresses, state, the send-buffer split
    (``unacked``, ``unsent``, ``free``, ``sndbuf``: the definitions of
    send_buffer), ``send_queue`` (unacked + unsent, ss's Send-Q; ``None`` for a
    listening socket, whose queue is its accept backlog), ``recv_queue``,
    ``queue_delay_s`` (unsent / delivery rate: how long a byte written now
    waits before it is sent; ``None`` when unknown), the congestion control
    and the full TcpInfo.  ``states`` keeps only sockets in these TCP states
    ("ESTABLISHED", "listen", "close-wait"…; filtered in the kernel; UDP
    and UNIX sockets use the same names: ESTABLISHED when connected, CLOSE
    when not, LISTEN for a UNIX listener).

    Linux: one NETLINK_SOCK_DIAG dump per address family and kind (udp_diag,
    unix_diag for UNIX) matched against the
    ``socket:[inode]`` links of ``/proc/<pid>/fd``, in the process's own
    network namespace (for a process in a container that needs root).
    Availability: Linux, macOS.
    Raises NoSuchProcess (no such pid, or it exited meanwhile), AccessDenied
    (root or the process's own user is needed), ValueError (unknown state
    or kind, or a pid outside 1 to 4194304), TypeError (a pid that is not an int).
    """
    return _platform.process_sockets(PID.check(pid, "pid"), states, kinds)


def sockets_of_processes(pids: Iterable[int], states: Optional[Iterable[str]] = None,
                         kinds: Iterable[str] = ("tcp",)) -> dict[int, list[SocketInfo]]:
    """The sockets of several processes read in one pass: {pid: [SocketInfo]}.

    The same SocketInfo structs as process_sockets(pid) for each; a socket several of
    them hold (inherited across fork) is under each, with that process's
    fd.  Processes that do not exist or exit meanwhile are left out.
    Linux: every process's fds are scanned, then one kernel pass per network
    namespace serves them all (by-name requests for sockets already known,
    else one dump per family).  macOS: one process at a time.
    Availability: Linux, macOS.  Raises AccessDenied (a process the caller
    may not look at), ValueError (unknown state or kind).
    """
    found = {}
    for pid, sockets in _platform.sockets_of_processes(pids, states, kinds).items():
        if isinstance(sockets, NoSuchProcess):
            continue
        if isinstance(sockets, Exception):
            raise sockets
        found[pid] = sockets
    return found


def interfaces(pid: Optional[int] = None) -> dict[str, InterfaceCounters]:
    """Counters of every network interface: {name: InterfaceCounters}.

    ``pid``: those of the network namespace process pid is in (Linux: a
    container's own interfaces; entering another namespace needs root);
    None: the caller's.  macOS has one set for every process.

    Exact 64-bit byte, packet, error and drop counts since each interface
    came up, with its index, MTU and whether it is administratively up.
    Linux: one rtnetlink ``RTM_GETSTATS`` dump (``IFLA_STATS_LINK_64``) and
    each link's name, flags and MTU by ioctl (an ``RTM_GETLINK`` dump before
    Linux 4.7), in the calling thread's network namespace.  macOS: ``NET_RT_IFLIST2`` with the
    exact byte counts from ``IFMIB_IFDATA``.  Availability: Linux, macOS.
    """
    return _platform.interfaces(0 if pid is None else PID.check(pid, "pid"))


def fd_headroom(pid: int) -> FdHeadroom:
    """pid's open file descriptors against its RLIMIT_NOFILE soft limit.

    ``near_limit`` is True within 10% of the limit, where new connections
    start failing with "Too many open files".  Linux: /proc/<pid>/fd and
    /proc/<pid>/limits.  macOS: PROC_PIDLISTFDS; the limit only for the
    caller's own process (libproc does not expose others'), else None.
    Raises NoSuchProcess, AccessDenied; ValueError, TypeError for a pid
    that is not an int from 1 to 4194304.
    """
    return _platform.fd_headroom(PID.check(pid, "pid"))


if LINUX:
    __all__ += ["ByteBudget", "TrafficAccountant", "cgroup_sockets", "process_traffic"]

    def cgroup_sockets(path: str, states: Optional[Iterable[str]] = None,
                       kinds: Iterable[str] = ("tcp",)) -> list[SocketInfo]:
        """The TCP sockets of a cgroup v2 and of the cgroups below it (a
        systemd unit, a container, a pod), filtered in the kernel by cgroup id;
        with ``kinds`` ("tcp", "udp", "unix") also the UDP and UNIX sockets
        the cgroup's processes hold.

        path: the cgroup's directory under the cgroup2 mount, or its path as
        ``/proc/<pid>/cgroup`` shows it (``/system.slice/nginx.service``).  A
        socket belongs to the cgroup of the task that created it; ``fd`` is
        None.  Read in the network namespace of each of the cgroup's
        processes.  Availability: Linux (cgroup v2; the kernel filter needs
        Linux 5.8, older kernels read the sockets the cgroup's processes
        hold).  Raises SockdiagError (no such cgroup), NotSupported (no
        cgroup v2 mount).
        """
        cgroup = _platform.open_cgroup(path)
        return _platform.cgroup_sockets(cgroup, states, kinds=kinds)

    _LAZY_NAMES.update(TrafficAccountant=("accounting", "TrafficAccountant"),
                       ByteBudget=("budget", "ByteBudget"))

    def process_traffic(interval_s: float = 1.0, pids=None) -> TrafficSample:
        """Per-process TCP traffic over the next interval_s seconds (blocks that long).

        Bytes sent, acked, received and retransmitted per process, with
        rates, from the tcp_info counters of live sockets plus the final
        counters of sockets closed meanwhile (socket-destroy notifications).
        ``pids`` limits it to those processes.  For repeated samples keep a
        TrafficAccountant instead.  Availability: Linux.
        ValueError, TypeError for an interval_s that is not a number of
        seconds above 0 and at most a day, or pids that are not pids.
        """
        from .accounting import TrafficAccountant

        interval_s = SAMPLE_INTERVAL.check(interval_s, "interval_s")
        with TrafficAccountant(pids=pids) as accountant:
            _time.sleep(interval_s)
            return accountant.sample()


if MACOS:
    __all__ += ["userspace_networking"]

    def userspace_networking(pid: int) -> UserSpaceNetworking:
        """Whether some of pid's connections bypass sockets (macOS user-space networking).

        Network.framework can run flows over Skywalk channels in user space;
        they have channel/NECP descriptors instead of sockets, so
        process_sockets cannot see them.  The FdHeadroom counts pid's descriptors
        by type; ``has_userspace_flows`` and ``hint`` (which points to
        ``skywalkctl flow -P PID``) say what to tell the user.
        Availability: macOS only.  Raises NoSuchProcess, AccessDenied;
        ValueError, TypeError for a pid that is not an int from 1 to 4194304.
        """
        return _platform.userspace_networking(PID.check(pid, "pid"))


def __getattr__(name: str):
    if name not in _LAZY_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    module, attribute = _LAZY_NAMES[name]
    value = import_module(f".{module}", __name__)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_NAMES))
