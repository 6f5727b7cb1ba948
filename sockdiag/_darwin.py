"""macOS platform module: thin wrappers over _fast's raw calls and sockdiag.decode.

_fast returns the kernel's bytes; sockdiag.decode turns them into structs.
Only this module combines them, so everything below except the syscalls is
plain Python that the tests exercise on Linux with synthetic buffers.
See docs/macos.md for what each value means on macOS.
"""

from __future__ import annotations

import errno
import functools
import os
import resource
import socket
import subprocess
from typing import Iterable, Optional

from . import _fast, decode
from ._common import (
    SOCKET_KINDS,
    FdHeadroom,
    InterfaceCounters,
    SendBuffer,
    SocketInfo,
    TcpInfo,
    UserSpaceNetworking,
    kind_mask,
    parse_tcp_state,
    snapshot_drain,
)
from ._exceptions import (
    AccessDenied,
    NoSuchProcess,
    NotSupported,
    SockdiagError,
    UnsuitableSocket,
    socket_kind,
    unsuitable_socket,
    wrap_oserror,
)


def _socket_exception(err: OSError) -> Exception:
    """sockdiag's exception for a failed call on a socket, with macOS's own messages."""
    fd = err.filename
    if err.errno == errno.EOPNOTSUPP and socket_kind(fd) == (socket.AF_UNIX, socket.SOCK_STREAM):
        return UnsuitableSocket(
            f"fd {fd} is a UNIX stream socket: on macOS its bytes wait in the "
            "peer's receive buffer, which only the peer can measure (FIONREAD)")
    if err.errno == errno.ECONNRESET:
        # tcp_ctloutput's answer once the TCP control block is freed.
        return UnsuitableSocket(
            f"fd {fd}: the TCP connection is gone (reset or closed); "
            "the kernel no longer keeps its TCP state")
    if err.errno == errno.ENOSYS and err.filename2 == "getsockopt(TCP_INFO)":
        return NotSupported(
            f"fd {fd}: this macOS refused the private TCP_INFO whose "
            "tcpi_txunacked splits the send buffer")
    return unsuitable_socket(err)


def _exception(err: OSError, function_name: str, subject) -> Exception:
    """sockdiag's exception for the OSError of a _fast call: the one errno
    mapping of macOS.  subject is the wrapped function's first argument."""
    if isinstance(err.filename, int):  # a call on a socket (see _fast.pyx)
        return _socket_exception(err)
    what = err.filename2 or function_name
    if err.errno == errno.ENOSYS:
        return NotSupported(f"{what} exists on macOS only")
    if isinstance(subject, int):  # a pid
        if err.errno == errno.ESRCH:
            return NoSuchProcess(subject)
        if err.errno in (errno.EPERM, errno.EACCES):
            return AccessDenied(subject)
    return SockdiagError(f"{what} failed: {err.strerror}")


def wrap_exceptions(function):
    """Decorator: the OSError a call raises becomes sockdiag's exception
    (NoSuchProcess, AccessDenied, UnsuitableSocket, NotSupported), chained."""
    return wrap_oserror(function, _exception)


# The calls on a socket raise _socket_exception's answer from the core itself.
_fast.set_socket_exception(_socket_exception)
send_buffer = _fast.send_buffer
socket_queues = _fast.socket_queues


def _decoded(function):
    """Decorator: a kernel answer the decoders cannot read becomes NotSupported.

    The decoders raise ValueError on malformed input; from a live kernel that
    means a macOS whose layouts differ from the ones sockdiag knows, which the
    user should hear in one line, not as a traceback.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except ValueError as err:
            raise NotSupported(
                f"this macOS answered in a layout sockdiag does not know ({err})") from err

    return wrapper


@wrap_exceptions
def tcp_info(sock_or_fd) -> TcpInfo:
    # The public struct always; the private one when the kernel gives it.
    # Decoded apart: an fd out of range (ValueError) is not a layout problem.
    return _tcp_info_decoded(*_fast.darwin_tcp_info_bytes(sock_or_fd))


@_decoded
def _tcp_info_decoded(private: Optional[bytes], public: bytes) -> TcpInfo:
    return decode.merge_tcp_info_darwin(
        decode.tcp_info_darwin(private) if private is not None else None,
        decode.tcp_connection_info_darwin(public),
    )


@wrap_exceptions
def get_notsent_lowat(sock) -> Optional[int]:
    # macOS has no system-wide default: 0 on the socket means off.
    return _fast.notsent_lowat(sock) or None


@wrap_exceptions
def set_notsent_lowat(sock, nbytes: Optional[int]) -> None:
    _fast.set_notsent_lowat(sock, nbytes or 0)


# --- sockets of a process -------------------------------------------------------


def _wanted_states(states: Optional[Iterable[str]]) -> Optional[frozenset[str]]:
    """State names as structs spell them ("syn-sent" -> "SYN_SENT"); None: all."""
    if states is None:
        return None
    if isinstance(states, str):
        states = [states]
    return frozenset(map(parse_tcp_state, states))


def process_sockets(pid: int, states: Optional[Iterable[str]] = None,
                    kinds: Iterable[str] = ("tcp",)) -> list[SocketInfo]:
    """pid's sockets of the kinds asked for, from libproc; the caller's own
    TCP ones with the full split."""
    wanted = _wanted_states(states)
    kinds_mask = kind_mask(kinds)
    sockets = [info for info in _libproc_sockets(pid)
               if (wanted is None or info.state in wanted)
               and kinds_mask >> SOCKET_KINDS.index(info.kind) & 1]
    if pid == os.getpid():
        return [_with_own_split(info) if info.kind == "tcp" else info for info in sockets]
    return sockets


@_decoded
@wrap_exceptions
def _fd_list(pid: int) -> list[tuple[int, str]]:
    """pid's descriptors as [(fd, type name)]."""
    return decode.proc_fdlist_darwin(_fast.darwin_proc_fdlist(pid))


def check_access(pid: int) -> None:
    """Raise NoSuchProcess or AccessDenied unless process_sockets(pid) may
    read the process's sockets; reads none (it lists the fds)."""
    _fd_list(pid)


@_decoded
@wrap_exceptions
def _libproc_sockets(pid: int) -> list[SocketInfo]:
    """pid's TCP sockets as libproc shows them to another process."""
    socket_fds = [fd for fd, kind in _fd_list(pid) if kind == "socket"]
    return [
        info
        for fd, buf in _fast.darwin_socket_fdinfos(pid, socket_fds)
        if (info := decode.socket_fdinfo_darwin(buf, fd)) is not None
    ]


def _with_own_split(info: SocketInfo) -> SocketInfo:
    """A socket of this very process: its fd is ours, so ask the socket itself.

    libproc gives only the send buffer's total; through the fd, the private
    tcp_info's txunacked splits it, and TCP_CONNECTION_INFO adds RTT, cwnd and
    byte counts.  If the fd was closed or reused meanwhile, the libproc view
    stays as it was.
    """
    try:
        sock = _own_socket(info.fd)
    except OSError:
        return info  # closed, or no longer a socket
    try:
        with sock:
            if _ports(sock) != (info.local_port, info.remote_port):
                return info  # the fd was reused for another connection
            buffer = send_buffer(sock)
            tcp = tcp_info(sock)
    except (OSError, SockdiagError):
        return info
    return split_socket_info(info, buffer, tcp)


def _own_socket(fd: int) -> socket.socket:
    """A socket object on a duplicate of one of our fds (closing it leaves fd open)."""
    duplicate = os.dup(fd)
    try:
        return socket.socket(fileno=duplicate)
    except OSError:
        os.close(duplicate)
        raise


def _ports(sock: socket.socket) -> tuple[int, int]:
    return sock.getsockname()[1], sock.getpeername()[1]


def split_socket_info(info: SocketInfo, buffer: SendBuffer, tcp: TcpInfo) -> SocketInfo:
    """info with the send-buffer split and TcpInfo read through the socket itself."""
    delay, limited_by, basis, stalled_s = snapshot_drain(buffer.unsent, buffer.unacked, buffer.free, tcp)
    return info.replace(
        send_queue=buffer.inflight,
        unacked=buffer.unacked,
        unsent=buffer.unsent,
        free=buffer.free,
        sndbuf=buffer.size,
        # macOS measures the send bandwidth (tcpi_snd_bw) only for some connections.
        queue_delay_s=delay,
        limited_by=limited_by,
        queue_delay_basis=basis,
        stalled_s=stalled_s,
        tcp=tcp,
    )


def userspace_networking(pid: int) -> UserSpaceNetworking:
    """Counts of pid's descriptors that tell whether its flows bypass sockets."""
    return count_fd_types(pid, _fd_list(pid))


def count_fd_types(pid: int, fds: Iterable[tuple[int, str]]) -> UserSpaceNetworking:
    """UserSpaceNetworking from a decoded fd list [(fd, type name)]."""
    kinds = [kind for _fd, kind in fds]
    return UserSpaceNetworking(
        pid=pid,
        socket_fds=kinds.count("socket"),
        channel_fds=kinds.count("channel"),
        netpolicy_fds=kinds.count("netpolicy"),
        nexus_fds=kinds.count("nexus"),
    )


def fd_headroom(pid: int) -> FdHeadroom:
    """pid's open fds and its RLIMIT_NOFILE soft limit (None when unknown or unlimited).

    No libproc flavor exposes another process's resource limits, so the limit
    is known only for the caller's own process.
    """
    open_fds = len(_fd_list(pid))
    if pid != os.getpid():
        return FdHeadroom(pid, open_fds, None)
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return FdHeadroom(pid, open_fds, None if soft == resource.RLIM_INFINITY else soft)


# --- interfaces -------------------------------------------------------------------


@_decoded
@wrap_exceptions
def interfaces(pid: int = 0) -> dict[str, InterfaceCounters]:
    """Counters per interface: one NET_RT_IFLIST2 walk, bytes from IFMIB.
    macOS has no network namespaces: every process (pid) sees these."""
    listed = decode.iflist2_darwin(_fast.darwin_iflist2())
    exact = [decode.ifmibdata_darwin(buf, index) for index, buf in _fast.darwin_ifmibdata_all()]
    merged = with_exact_bytes(listed, [counters for counters in exact if counters is not None])
    return {name: without_uncounted_bytes(counters) for name, counters in merged.items()}


def with_exact_bytes(
    listed: dict[str, InterfaceCounters], exact: Iterable[InterfaceCounters]
) -> dict[str, InterfaceCounters]:
    """IFLIST2's counters with the byte counts replaced by IFMIB's exact ones.

    IFLIST2 rounds bytes to 1 KiB and wraps them at 4 GiB for programs that
    Apple did not sign; IFMIB does not.  An interface IFMIB did not answer for
    (it went away between the two reads, or came back with another index)
    gets ``None`` bytes rather than the rounded value.
    """
    by_name = {counters.name: counters for counters in exact}
    result = {}
    for name, counters in listed.items():
        mib = by_name.get(name)
        if mib is None or mib.index != counters.index:
            result[name] = counters.replace(rx_bytes=None, tx_bytes=None)
        else:
            result[name] = counters.replace(rx_bytes=mib.rx_bytes, tx_bytes=mib.tx_bytes)
    return result


# --- processes: names ---------------------------------------------------------------


def process_name(pid: int) -> str:
    """The process's command name as ps shows it (the executable's basename).

    Raises NoSuchProcess when ps knows no such process.
    """
    done = subprocess.run(["ps", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True)
    name = done.stdout.strip().rsplit("/", 1)[-1]
    if not name:
        raise NoSuchProcess(pid)
    return name


def without_uncounted_bytes(counters: InterfaceCounters) -> InterfaceCounters:
    """counters with a byte count the kernel does not keep set to None, and a note why.

    On some Skywalk-backed interfaces macOS counts packets but leaves a byte
    counter at 0 (reported for received bytes on Wi-Fi, macOS 26).  A byte
    count of 0 beside a packet count above 0 cannot be true, so it becomes
    ``None`` (a rate of None, not 0 B/s) and ``counters_note`` says so.
    """
    uncounted = [
        direction
        for direction, nbytes, packets in (("rx", counters.rx_bytes, counters.rx_packets),
                                           ("tx", counters.tx_bytes, counters.tx_packets))
        if nbytes == 0 and packets
    ]
    if not uncounted:
        return counters
    return counters.replace(
        **{f"{direction}_bytes": None for direction in uncounted},
        counters_note=(
            f"the kernel counts {' and '.join(uncounted)} packets here but not their bytes "
            "(a Skywalk-backed interface): those byte counts are unknown"),
    )


def sockets_of_processes(pids, states=None, kinds=("tcp",)) -> dict:
    """{pid: its sockets, or the exception reading them raised}, one process at a time
    (libproc asks per process: there is no machine-wide pass to share)."""
    found: dict = {}
    for pid in dict.fromkeys(pids):
        try:
            found[pid] = process_sockets(pid, states, kinds)
        except SockdiagError as err:
            found[pid] = err
    return found
