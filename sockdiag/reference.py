"""Pure-Python reference of send_buffer, tcp_info, process_sockets and interfaces (Linux).

Built only on fcntl.ioctl, the socket module and struct: the oracle the tests
hold the Cython path to, and the baseline the benchmarks measure it against.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from typing import Iterator, Optional

from ._common import (
    SOCKET_KINDS,
    SOCKET_TYPES,
    TCP_CA_STATES,
    InterfaceCounters,
    LinkStats64,
    SendBuffer,
    SocketInfo,
    SocketQueues,
    TcpInfo,
    snapshot_drain,
    tcp_state_name,
)

SIOCINQ = 0x541B
SIOCOUTQ = 0x5411
SIOCOUTQNSD = 0x894B
SO_MEMINFO = 55
TCP_INFO = 11
_INT = struct.Struct("i")
_MEMINFO = struct.Struct("9I")

# (attribute, struct format) of every field after the first 8 bytes, in order.
_LINUX_TCP_INFO_LAYOUT = (
    ("rto_us", "I"), ("ato_us", "I"), ("snd_mss", "I"), ("rcv_mss", "I"),
    ("unacked_segs", "I"), ("sacked_segs", "I"), ("lost_segs", "I"),
    ("retrans_segs", "I"), ("fackets", "I"),
    ("last_data_sent_ms", "I"), ("last_ack_sent_ms", "I"),
    ("last_data_recv_ms", "I"), ("last_ack_recv_ms", "I"),
    ("pmtu", "I"), ("rcv_ssthresh", "I"), ("rtt_us", "I"), ("rttvar_us", "I"),
    ("snd_ssthresh_segs", "I"), ("snd_cwnd_segs", "I"), ("advmss", "I"),
    ("reordering", "I"), ("rcv_rtt_us", "I"), ("rcv_space", "I"),
    ("total_retrans", "I"),
    ("pacing_rate_bps", "Q"), ("max_pacing_rate_bps", "Q"),
    ("bytes_acked", "Q"), ("bytes_received", "Q"),
    ("segs_out", "I"), ("segs_in", "I"), ("notsent_bytes", "I"),
    ("min_rtt_us", "I"), ("data_segs_in", "I"), ("data_segs_out", "I"),
    ("delivery_rate_bps", "Q"), ("busy_time_us", "Q"),
    ("rwnd_limited_us", "Q"), ("sndbuf_limited_us", "Q"),
    ("delivered", "I"), ("delivered_ce", "I"),
    ("bytes_sent", "Q"), ("bytes_retrans", "Q"),
    ("dsack_dups", "I"), ("reord_seen", "I"), ("rcv_ooopack", "I"),
    ("snd_wnd", "I"), ("rcv_wnd", "I"), ("rehash", "I"),
    ("total_rto", "H"), ("total_rto_recoveries", "H"), ("total_rto_time_ms", "I"),
    ("received_ce", "I"), ("delivered_e1_bytes", "I"), ("delivered_e0_bytes", "I"),
    ("delivered_ce_bytes", "I"), ("received_e1_bytes", "I"),
    ("received_e0_bytes", "I"), ("received_ce_bytes", "I"),
    ("accecn_fail_mode", "H"), ("accecn_opt_seen", "H"),
)
_RATES = {"pacing_rate_bps", "max_pacing_rate_bps", "delivery_rate_bps"}
_U64_MAX = 2**64 - 1


def _offsets():
    offset = 8
    for name, fmt in _LINUX_TCP_INFO_LAYOUT:
        size = struct.calcsize(fmt)
        offset += -offset % size  # natural alignment, as the C struct has
        yield name, fmt, offset
        offset += size


_LINUX_TCP_INFO_OFFSETS = tuple(_offsets())


def _fd(sock_or_fd) -> int:
    return sock_or_fd if isinstance(sock_or_fd, int) else sock_or_fd.fileno()


def send_buffer(sock_or_fd) -> SendBuffer:
    """Same definitions as sockdiag.send_buffer, for connected TCP sockets."""
    fd = _fd(sock_or_fd)
    unsent = _INT.unpack(fcntl.ioctl(fd, SIOCOUTQNSD, b"\0" * 4))[0]
    queued = _INT.unpack(fcntl.ioctl(fd, SIOCOUTQ, b"\0" * 4))[0]
    with socket.socket(fileno=fd) as sock:
        try:
            mem = _MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))
        finally:
            sock.detach()
    sndbuf, wmem_queued = mem[3], mem[5]
    return SendBuffer(
        size=sndbuf,
        unacked=max(queued - unsent, 0),
        unsent=unsent,
        free=max(sndbuf - wmem_queued, 0),
    )


def socket_queues(sock: socket.socket) -> SocketQueues:
    """Same definitions as sockdiag.socket_queues (Linux), for a socket object."""
    kind = ("unix" if sock.family == socket.AF_UNIX
            else "udp" if sock.type == socket.SOCK_DGRAM and sock.proto in (0, socket.IPPROTO_UDP)
            else "tcp" if sock.type == socket.SOCK_STREAM and sock.proto in (0, socket.IPPROTO_TCP)
            else None)
    if kind is None:
        raise OSError(errno.EOPNOTSUPP, "neither a TCP, UDP nor UNIX socket")
    mem = _MEMINFO.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO.size))
    rmem_alloc, rcvbuf, sndbuf, drops = mem[0], mem[1], mem[3], mem[8]
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        return SocketQueues(kind, None, None, rcvbuf, sndbuf, drops)
    queued = _INT.unpack(fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]
    unread = rmem_alloc if kind == "udp" else _INT.unpack(fcntl.ioctl(sock.fileno(), SIOCINQ, b"\0" * 4))[0]
    return SocketQueues(kind, unread, queued, rcvbuf, sndbuf, drops)


def tcp_info(sock) -> TcpInfo:
    """TCP_INFO of a socket object, decoded by tcp_info_linux."""
    return tcp_info_linux(sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 512))


def tcp_info_linux(buf: bytes) -> TcpInfo:
    """struct-based decoder of a Linux tcp_info of any length."""
    if len(buf) < 8:
        raise ValueError(f"tcp_info of {len(buf)} bytes: the shortest any kernel returns is 8")
    state, ca_state, retransmits, probes, backoff, options, wscale, flags = buf[:8]
    fields = {
        "state": tcp_state_name(state),
        "ca_state": TCP_CA_STATES[ca_state] if ca_state < len(TCP_CA_STATES) else f"UNKNOWN({ca_state})",
        "retransmits": retransmits,
        "probes": probes,
        "backoff": backoff,
        "options": options,
        "snd_wscale": wscale & 0x0F,
        "rcv_wscale": wscale >> 4,
        "delivery_rate_app_limited": bool(flags & 0x01),
        "fastopen_client_fail": (flags >> 1) & 0x03,
    }
    for name, fmt, offset in _LINUX_TCP_INFO_OFFSETS:
        if offset + struct.calcsize(fmt) > len(buf):
            break
        (value,) = struct.unpack_from("=" + fmt, buf, offset)
        if name in _RATES:
            value = None if value == _U64_MAX else value * 8
        fields[name] = value
    return TcpInfo(**fields)


# --- netlink: one message generator, one attribute walker, one dump ----------------
# The pure-Python twin of _fast_netlink.pxi.

NETLINK_SOCK_DIAG = 4
NLMSG_ERROR, NLMSG_DONE = 2, 3
_NLM_F_DUMP_INTR = 0x10
_NLA_TYPE_MASK = 0x3FFF
_MAX_ERRNO = 4095
_NLMSGHDR = struct.Struct("=IHHII")
_RTATTR = struct.Struct("=HH")


def _align4(length: int) -> int:
    return (length + 3) & ~3


def netlink_messages(buf) -> Iterator[tuple[int, int, memoryview]]:
    """(type, flags, payload) of each netlink message in buf but NLMSG_ERROR:
    an error code raises OSError (0, an acknowledgement, is skipped), a
    length pointing outside buf ValueError."""
    buf = memoryview(buf)
    offset = 0
    while offset + _NLMSGHDR.size <= len(buf):
        length, kind, flags, _, _ = _NLMSGHDR.unpack_from(buf, offset)
        if length < _NLMSGHDR.size or length > len(buf) - offset:
            raise ValueError(f"netlink message of {length} bytes at offset {offset} of a {len(buf)}-byte buffer")
        if kind == NLMSG_ERROR:
            if length < _NLMSGHDR.size + 4:
                raise ValueError("NLMSG_ERROR without its error code")
            (error,) = struct.unpack_from("=i", buf, offset + _NLMSGHDR.size)
            if not -_MAX_ERRNO <= error <= 0:
                raise ValueError(f"NLMSG_ERROR with error code {error}, not 0 or -errno")
            if error:
                raise OSError(-error, os.strerror(-error))
        else:
            yield kind, flags, buf[offset + _NLMSGHDR.size:offset + length]
        offset += _align4(length)  # the last message may lack its padding
    if offset < len(buf):
        raise ValueError(f"truncated netlink message: {len(buf) - offset} bytes after the last netlink message")


def attributes(message, offset: int) -> Iterator[tuple[int, memoryview]]:
    """(type without its flag bits, payload) of each attribute in message[offset:]."""
    message = memoryview(message)
    while offset < len(message):
        if len(message) - offset < _RTATTR.size:
            raise ValueError(f"truncated attribute at the end of a {len(message)}-byte message")
        length, kind = _RTATTR.unpack_from(message, offset)
        if length < _RTATTR.size or length > len(message) - offset:
            raise ValueError(f"attribute of {length} bytes at offset {offset} of a {len(message)}-byte message")
        yield kind & _NLA_TYPE_MASK, message[offset + _RTATTR.size:offset + length]
        offset += _align4(length)


def netlink_dump(sock: socket.socket, request: bytes, attempts: int, accept_interrupted: bool) -> list[bytes]:
    """The datagrams of one dump up to NLMSG_DONE, taken again while the
    kernel marks it interrupted (then kept if accept_interrupted, else
    OSError(EAGAIN) after attempts)."""
    for attempt in range(attempts):
        sock.send(request)
        datagrams: list[bytes] = []
        done = interrupted = False
        while not done:
            datagram = sock.recv(1 << 20)
            datagrams.append(datagram)
            for kind, flags, _ in netlink_messages(datagram):
                interrupted |= bool(flags & _NLM_F_DUMP_INTR)
                if kind == NLMSG_DONE:
                    done = True
                    break
        if not interrupted or (accept_interrupted and attempt == attempts - 1):
            return datagrams
    raise OSError(errno.EAGAIN, f"the table changed during each of {attempts} netlink dumps")


# --- process sockets (sock_diag) -------------------------------------------------
# The pure-Python twin of _fast_diag.pxi: the oracle its decoder is held to and
# the baseline the benchmark measures it against.

SOCK_DIAG_BY_FAMILY = 20
INET_DIAG_INFO, INET_DIAG_CONG, INET_DIAG_SKMEMINFO = 2, 4, 7
_LINUX_AF_INET, _LINUX_AF_INET6 = 2, 10
_DIAG_MSG = struct.Struct("=BBBBHH16s16sI8sIIIII")  # inet_diag_msg, 72 bytes
_DIAG_REQUEST = struct.Struct("=IHHII BBBBI HH16s16sI8s")
_SOCKID_SIZE = 48
_NLM_F_REQUEST = 1
_DIAG_DUMP_ATTEMPTS = 3
_TCP_LISTEN = 10
_NOTSENT = {name: offset for name, _, offset in _LINUX_TCP_INFO_OFFSETS}["notsent_bytes"]
_DIAG_EXT = (1 << (INET_DIAG_INFO - 1)) | (1 << (INET_DIAG_CONG - 1)) | (1 << (INET_DIAG_SKMEMINFO - 1))
_UDP_DIAG_EXT = 1 << (INET_DIAG_SKMEMINFO - 1)
_RCVBUF, _WMEM_ALLOC, _SNDBUF, _WMEM_QUEUED, _DROPS = 1, 2, 3, 5, 8  # sk_meminfo indices
_LINUX_AF_UNIX = 1
_UNIX_DIAG_MSG = struct.Struct("=BBBxI8x")  # unix_diag_msg, 16 bytes
_UNIX_DIAG_REQUEST = struct.Struct("=BBxxIIIII")  # unix_diag_req, 24 bytes
UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN, UNIX_DIAG_MEMINFO = 0, 2, 4, 5
_UDIAG_SHOW = 0x01 | 0x04 | 0x10 | 0x20  # NAME, PEER, RQLEN, MEMINFO


def socket_fds(pid: int) -> dict[int, int]:
    """inode -> fd of the sockets in /proc/<pid>/fd (the first fd of each)."""
    found: dict[int, int] = {}
    path = f"/proc/{pid}/fd"
    for name in os.listdir(path):
        try:
            link = os.readlink(f"{path}/{name}")
        except FileNotFoundError:
            continue  # closed since listed
        if link.startswith("socket:["):
            found.setdefault(int(link[8:-1]), int(name))
    return found


def inet_diag_dump(buf: bytes, fds: Optional[dict[int, int]] = None, kind: str = "tcp") -> list[SocketInfo]:
    """struct-based decoder of sock_diag dump bytes (see decode.inet_diag_dump):
    inet_diag messages are of kind ("tcp" or "udp"), unix_diag ones UNIX."""
    if kind not in ("tcp", "udp"):
        raise ValueError(f"an inet_diag dump is of TCP or UDP sockets, not {kind!r}")
    out: list[SocketInfo] = []
    seen: set[int] = set()
    for message_type, _, message in netlink_messages(buf):
        if message_type != SOCK_DIAG_BY_FAMILY:
            continue
        unix = len(message) > 0 and message[0] == _LINUX_AF_UNIX
        header = _UNIX_DIAG_MSG if unix else _DIAG_MSG
        if len(message) < header.size:
            what = "unix_diag message" if unix else "sock_diag message"
            raise ValueError(f"{what} of {len(message)} bytes: shorter than {'unix' if unix else 'inet'}_diag_msg")
        inode = header.unpack_from(message)[3 if unix else 14]
        if fds is None or (inode and inode in fds and inode not in seen):
            seen.add(inode)
            fd = None if fds is None else fds[inode]
            out.append(_unix_socket_info(message, fd) if unix else _socket_info(message, fd, kind))
    return out


def _memory(mem: Optional[bytes], charged: int) -> dict:
    """sndbuf, rcvbuf, drops and free of an sk_meminfo payload; free is
    sndbuf less the memory at index charged."""
    values = struct.unpack_from(f"={len(mem) // 4}I", mem) if mem is not None else ()
    found: dict = {}
    if len(values) > max(charged, _SNDBUF):
        found.update(sndbuf=values[_SNDBUF], rcvbuf=values[_RCVBUF],
                     free=max(values[_SNDBUF] - values[charged], 0))
    if len(values) > _DROPS:
        found["drops"] = values[_DROPS]
    return found


def _socket_info(message: memoryview, fd: Optional[int], kind: str = "tcp") -> SocketInfo:
    (family, state, _, _, sport, dport, src, dst, _, _, _, rqueue, wqueue, _,
     inode) = _DIAG_MSG.unpack_from(message)
    if family not in (_LINUX_AF_INET, _LINUX_AF_INET6):
        raise ValueError(f"sock_diag message of address family {family}")
    found = {attribute: bytes(payload) for attribute, payload in attributes(message, _DIAG_MSG.size)}
    python_family = socket.AF_INET if family == _LINUX_AF_INET else socket.AF_INET6
    size = 4 if family == _LINUX_AF_INET else 16
    common = dict(
        fd=fd, inode=inode, family="IPv4" if family == _LINUX_AF_INET else "IPv6",
        local_address=socket.inet_ntop(python_family, src[:size]), local_port=socket.ntohs(sport),
        remote_address=socket.inet_ntop(python_family, dst[:size]), remote_port=socket.ntohs(dport),
        state=tcp_state_name(state), recv_queue=rqueue)
    mem = found.get(INET_DIAG_SKMEMINFO)
    if kind == "udp":
        return SocketInfo(**common, **_memory(mem, _WMEM_ALLOC), send_queue=wqueue, unacked=None,
                          unsent=None, queue_delay_s=None, congestion=None, tcp=None,
                          kind="udp", socket_type="dgram")
    info = found.get(INET_DIAG_INFO)
    tcp = tcp_info_linux(info) if info is not None else None
    notsent = struct.unpack_from("=I", info, _NOTSENT)[0] if info and len(info) >= _NOTSENT + 4 else None
    memory = {"sndbuf": None, "free": None, **_memory(mem, _WMEM_QUEUED)}
    cong = found.get(INET_DIAG_CONG)
    listening = state == _TCP_LISTEN
    known = notsent is not None and not listening
    unacked = max(wqueue - notsent, 0) if known else None
    delay, limited_by, basis, stalled_s = (snapshot_drain(notsent, unacked, memory["free"], tcp) if known
                                           else (None, None, None, None))
    return SocketInfo(
        **common, **memory,
        send_queue=None if listening else wqueue,
        unacked=unacked,
        unsent=notsent if known else None,
        queue_delay_s=delay,
        congestion=cong[:16].split(b"\0", 1)[0].decode("ascii", "replace") if cong is not None else None,
        tcp=tcp, limited_by=limited_by, queue_delay_basis=basis, stalled_s=stalled_s,
        kind="tcp", socket_type="stream", backlog_limit=wqueue if listening else None,
    )


def unix_path(name: Optional[bytes]) -> Optional[str]:
    """A UNIX_DIAG_NAME as text: the path up to its first NUL, "@" and the
    rest for an abstract name, None when unnamed; non-UTF-8 bytes escaped."""
    if not name:
        return None
    if name[0] == 0:
        return "@" + name[1:].decode("utf-8", "backslashreplace")
    return name.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _unix_socket_info(message: memoryview, fd: Optional[int]) -> SocketInfo:
    _, socket_type, state, inode = _UNIX_DIAG_MSG.unpack_from(message)
    found = {attribute: bytes(payload) for attribute, payload in attributes(message, _UNIX_DIAG_MSG.size)}
    listening = state == _TCP_LISTEN
    peer = found.get(UNIX_DIAG_PEER)
    peer_inode = struct.unpack_from("=I", peer)[0] if peer is not None and len(peer) >= 4 else None
    rqlen = found.get(UNIX_DIAG_RQLEN)
    rqueue, wqueue = struct.unpack_from("=II", rqlen) if rqlen is not None and len(rqlen) >= 8 else (None, None)
    memory = _memory(found.get(UNIX_DIAG_MEMINFO), _WMEM_ALLOC)
    if listening:
        memory.pop("free", None)
    return SocketInfo(
        fd=fd, inode=inode, family="UNIX", local_address=unix_path(found.get(UNIX_DIAG_NAME)),
        local_port=None, remote_address=None, remote_port=None, state=tcp_state_name(state),
        send_queue=None if listening else wqueue, unacked=None, unsent=None,
        **{"sndbuf": None, "free": None, **memory},
        recv_queue=rqueue, queue_delay_s=None, congestion=None, tcp=None,
        kind="unix",
        socket_type=SOCKET_TYPES[socket_type] if 0 < socket_type < len(SOCKET_TYPES) else f"UNKNOWN({socket_type})",
        backlog_limit=wqueue if listening else None,
        peer_inode=peer_inode or None,  # 0: a peer not yet accepted has no inode
    )


def unix_request(state_mask: int, inode: int = 0, seq: int = 0) -> bytes:
    """A unix_diag dump request (inode 0), or an exact one for the UNIX socket of inode."""
    flags = _NLM_F_REQUEST if inode else 0x301  # NLM_F_REQUEST | NLM_F_DUMP
    return (_NLMSGHDR.pack(_NLMSGHDR.size + _UNIX_DIAG_REQUEST.size, SOCK_DIAG_BY_FAMILY, flags, seq, 0)
            + _UNIX_DIAG_REQUEST.pack(_LINUX_AF_UNIX, 0, 0xFFFFFFFF if inode else state_mask, inode,
                                      _UDIAG_SHOW, 0xFFFFFFFF, 0xFFFFFFFF))


def asked_unix_sockets(fds: dict[int, int]) -> list[SocketInfo]:
    """The UNIX sockets among fds ({inode: fd}) asked for by inode, one
    request each (the twin of _fast's exact path for UNIX sockets): an
    inode that is not a UNIX socket is answered ENOENT and left out."""
    found: list[SocketInfo] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        for seq, inode in enumerate(fds):
            nl.send(unix_request(0, inode, seq))
            try:
                found += inet_diag_dump(nl.recv(1 << 16), fds)
            except FileNotFoundError:
                continue
    return found


def dump_requests(kinds: int, state_mask: int) -> Iterator[tuple[str, bytes]]:
    """(kind, request) of each dump process_sockets takes for the kinds mask."""
    for bit, kind in enumerate(SOCKET_KINDS):
        if not kinds >> bit & 1:
            continue
        if kind == "unix":
            yield kind, unix_request(state_mask)
            continue
        protocol, ext = (socket.IPPROTO_TCP, _DIAG_EXT) if kind == "tcp" else (socket.IPPROTO_UDP, _UDP_DIAG_EXT)
        for family in (_LINUX_AF_INET, _LINUX_AF_INET6):
            yield kind, _DIAG_REQUEST.pack(_DIAG_REQUEST.size, SOCK_DIAG_BY_FAMILY, 0x301, 0, 0,
                                           family, protocol, ext, 0, state_mask, 0, 0, b"", b"", 0, b"")


def process_sockets(pid: int, state_mask: int, kinds: int = 1) -> list[SocketInfo]:
    """Same as sockdiag.process_sockets (caller's network namespace), in
    Python; kinds is the mask of SOCKET_KINDS bits."""
    fds = socket_fds(pid)
    found: list[SocketInfo] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        for kind, request in dump_requests(kinds, state_mask):
            datagrams = netlink_dump(nl, request, _DIAG_DUMP_ATTEMPTS, accept_interrupted=True)
            found += inet_diag_dump(b"".join(datagrams), fds, "udp" if kind == "udp" else "tcp")
    return found


def diag_name(message) -> bytes:
    """The name of a dump message's socket: its family byte and inet_diag_sockid
    (ports, addresses, interface, cookie), as exact requests carry them."""
    return bytes(message[0:1]) + bytes(message[4:4 + _SOCKID_SIZE])


def exact_request(name: bytes, seq: int) -> bytes:
    """A SOCK_DIAG_BY_FAMILY request without NLM_F_DUMP for the socket of name."""
    return (_NLMSGHDR.pack(_DIAG_REQUEST.size, SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, seq, 0)
            + struct.pack("=BBBBI", name[0], socket.IPPROTO_TCP, _DIAG_EXT, 0, 0xFFFFFFFF) + name[1:])


def asked_sockets(names: dict[int, bytes], fds: dict[int, int]) -> Optional[list[SocketInfo]]:
    """The sockets of names ({inode: diag_name}) asked for by name, all in one
    send (the twin of _fast's exact path); None when the kernel has nothing
    by one of the names (ENOENT, ESTALE)."""
    found: list[SocketInfo] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_SOCK_DIAG) as nl:
        nl.send(b"".join(exact_request(name, seq) for seq, name in enumerate(names.values())))
        for _ in names:  # one answer per request, in order, a datagram each
            try:
                found += inet_diag_dump(nl.recv(1 << 16), fds)
            except OSError as err:
                if err.errno in (errno.ENOENT, errno.ESTALE):
                    return None
                raise
    return found


# --- interface counters ------------------------------------------------------

_IFINFOMSG = struct.Struct("=BxHiII")
_RTM_NEWLINK = 16
_IFLA_IFNAME, _IFLA_MTU, _IFLA_STATS64 = 3, 4, 23
_GETLINK_DUMP = (_NLMSGHDR.pack(32, 18, 0x301, 0, 0)  # RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP
                 + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
_LINK_STATS64_FIELDS = len(LinkStats64._fields)
_LINK_STATS64_MIN_FIELDS = 23  # struct rtnl_link_stats64 of Linux 2.6.35


def rtnl_link_stats64(buf: bytes) -> LinkStats64:
    """struct-based decoder of an IFLA_STATS64 payload of any kernel's length."""
    count = min(len(buf) // 8, _LINK_STATS64_FIELDS)
    if count < _LINK_STATS64_MIN_FIELDS:
        raise ValueError(f"rtnl_link_stats64 of {len(buf)} bytes")
    values = struct.unpack_from(f"={count}Q", buf)
    return LinkStats64(*values, *[None] * (_LINK_STATS64_FIELDS - count))


def _link(body: memoryview) -> InterfaceCounters:
    if len(body) < _IFINFOMSG.size:
        raise ValueError(f"RTM_NEWLINK body of {len(body)} bytes, shorter than ifinfomsg")
    _, _, index, flags, _ = _IFINFOMSG.unpack_from(body)
    fields = dict.fromkeys(InterfaceCounters._fields)
    fields.update(index=index, is_up=bool(flags & 1))
    for kind, payload in attributes(body, _IFINFOMSG.size):
        if kind == _IFLA_IFNAME:
            name = bytes(payload).split(b"\0", 1)[0]
            if not name:
                raise ValueError("IFLA_IFNAME is empty")
            fields["name"] = os.fsdecode(name)
        elif kind == _IFLA_MTU:
            if len(payload) < 4:
                raise ValueError(f"IFLA_MTU of {len(payload)} bytes")
            fields["mtu"] = struct.unpack_from("=I", payload)[0]
        elif kind == _IFLA_STATS64:
            if len(payload) < _LINK_STATS64_MIN_FIELDS * 8:
                raise ValueError(f"IFLA_STATS64 of {len(payload)} bytes")
            stats = rtnl_link_stats64(payload)
            fields.update(
                rx_bytes=stats.rx_bytes, tx_bytes=stats.tx_bytes,
                rx_packets=stats.rx_packets, tx_packets=stats.tx_packets,
                rx_errors=stats.rx_errors, tx_errors=stats.tx_errors,
                rx_drops=stats.rx_dropped, tx_drops=stats.tx_dropped)
    if fields["name"] is None:
        raise ValueError("link message without IFLA_IFNAME")
    return InterfaceCounters(**fields)


def _links(buf, out: dict[str, InterfaceCounters]) -> tuple[bool, bool]:
    """Add the links in buf to out, up to NLMSG_DONE; (done, interrupted)."""
    interrupted = False
    for kind, flags, body in netlink_messages(buf):
        interrupted |= bool(flags & _NLM_F_DUMP_INTR)
        if kind == NLMSG_DONE:
            return True, interrupted
        if kind == _RTM_NEWLINK:
            link = _link(body)
            out[link.name] = link
    return False, interrupted


def rtnl_link_dump(buf: bytes) -> dict[str, InterfaceCounters]:
    """struct-based decoder of a whole RTM_GETLINK dump, as decode.rtnl_link_dump."""
    out: dict[str, InterfaceCounters] = {}
    try:
        done, interrupted = _links(bytes(buf), out)
    except OSError as err:
        raise ValueError(f"the dump carries a netlink error: {os.strerror(err.errno)}") from None
    if not done:
        raise ValueError("the dump does not end in NLMSG_DONE")
    if interrupted:
        raise ValueError("the dump was interrupted (NLM_F_DUMP_INTR)")
    return out


def interfaces(attempts: int = 5) -> dict[str, InterfaceCounters]:
    """One RTM_GETLINK dump with Python's socket module, decoded with struct
    (the same counters as the core's RTM_GETSTATS dump, by another request)."""
    out: dict[str, InterfaceCounters] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        for datagram in netlink_dump(sock, _GETLINK_DUMP, attempts, accept_interrupted=False):
            _links(datagram, out)
    return out


# --- ftrace ring-buffer pages (twin of _fast.trace_page_events) ----------------------

_TRACE_PAGE_HEADER = struct.Struct("<Qq")  # timestamp, commit (events/header_page)
_TRACE_PADDING, _TRACE_TIME_EXTEND = 29, 30


def trace_page_events(page: bytes, layout: tuple, event_id: int) -> list[tuple]:
    """(timestamp, field values…) of each record of one event in a ring-buffer page.

    layout: (offset, size) of common_type, then of each field; sizes 1, 2, 4
    and 8 are unsigned integers, others bytes.  Framing that cannot be trusted
    ends the page (see includes/trace.h).
    """
    if len(page) < _TRACE_PAGE_HEADER.size:
        return []
    stamp, commit = _TRACE_PAGE_HEADER.unpack_from(page)
    end = min(len(page), _TRACE_PAGE_HEADER.size + (commit & ((1 << 30) - 1)))
    needed = max(offset + size for offset, size in layout)
    offset = _TRACE_PAGE_HEADER.size
    events = []

    def read(data_at: int, field: tuple):
        at, size = field
        raw = page[data_at + at:data_at + at + size]
        return int.from_bytes(raw, "little") if size in (1, 2, 4, 8) else raw

    while offset + 4 <= end:
        header = int.from_bytes(page[offset:offset + 4], "little")
        type_len, delta = header & 31, header >> 5
        if type_len == 0 or type_len == _TRACE_PADDING:
            if offset + 8 > end or (type_len == _TRACE_PADDING and delta == 0):
                break
            counted = int.from_bytes(page[offset + 4:offset + 8], "little")
            if counted < 4:
                break
            data, following = offset + 8, offset + 4 + counted
        elif type_len <= 28:
            data, following = offset + 4, offset + 4 + 4 * type_len
        else:
            if offset + 8 > end:
                break
            value = (int.from_bytes(page[offset + 4:offset + 8], "little") << 27) | delta
            stamp = (stamp + value if type_len == _TRACE_TIME_EXTEND
                     else (stamp & ~((1 << 59) - 1)) | value) & ((1 << 64) - 1)
            offset += 8
            continue
        if following > end:
            break
        stamp = (stamp + delta) & ((1 << 64) - 1)
        offset = following
        if type_len == _TRACE_PADDING or following - data < needed:
            continue
        if read(data, layout[0]) != event_id:
            continue
        events.append((stamp, *(read(data, field) for field in layout[1:])))
    return events
