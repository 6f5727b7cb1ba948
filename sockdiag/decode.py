"""Pure decoders of kernel buffers, callable on every platform from bytes.

Each takes the bytes a kernel call returned and gives a struct.  Short,
truncated or hostile input raises ValueError; nothing reads out of bounds.
The Linux decoders run in _fast (the compiler lays out the bit-fields); the
macOS ones are struct-based, following shared/reference/macos-abi.md.
"""

from __future__ import annotations

import re
import socket
import struct
from typing import NamedTuple, Optional

from . import _fast
from ._common import (
    TCP_INFO_FIELDS,
    InterfaceCounters,
    LinkStats64,
    SendBuffer,
    SocketInfo,
    TcpDestroyEvent,
    TcpInfo,
)


def tcp_info_linux(buf: bytes) -> TcpInfo:
    """Decode a Linux ``struct tcp_info`` of whatever length a kernel returned.

    Fields past the end of ``buf`` are ``None``; bytes past the newest known
    layout (280 bytes, Linux 6.18) are ignored.  ValueError under 8 bytes.
    """
    return _fast.decode_tcp_info_linux(buf)


def inet_diag_dump(buf: bytes, fds: Optional[dict[int, int]] = None, kind: str = "tcp") -> list[SocketInfo]:
    """Decode the bytes of a Linux NETLINK_SOCK_DIAG dump into SocketInfo.

    ``buf`` holds whole netlink messages (what one or more ``recv`` returned,
    NLMSG_DONE included or not).  ``kind``: what its inet_diag messages are,
    "tcp" or "udp" (the message does not say); unix_diag messages are
    decoded as UNIX sockets whatever kind.  ``fds`` maps socket inode -> fd: only those
    sockets become structs, carrying their fd; ``None`` decodes every socket
    (``fd`` is then ``None``).  The same decoder as process_sockets.
    ValueError for malformed input; OSError for a kernel NLMSG_ERROR message.
    """
    return _fast.decode_inet_diag_dump(buf, fds, kind)


# =============================================================================
# macOS (XNU).  Layouts, offsets and constants from
# shared/reference/macos-abi.md (sections in brackets); everything is
# little-endian and read with struct.unpack_from, never by casting, because
# the kernel packs 8-byte counters at 4-byte offsets.
#
# Every offset, size and constant the macOS decoders use is declared once,
# in a table that also names it in C; DARWIN_ABI collects them all, and
# .github/macos/audit.py compiles each as a _Static_assert against Apple's
# headers (docs/macos.md, "Checking the layouts").


class AbiCheck(NamedTuple):
    """One assumption about Apple's headers: C ``expression`` equals ``value``.

    ``private``: it needs XNU's private ``struct tcp_info`` / ``TCP_INFO``,
    which the SDK lacks.  ``only_if``: a C condition under which it holds
    (the private struct's tail moved between releases).
    """

    expression: str
    value: int
    private: bool = False
    only_if: Optional[str] = None


DARWIN_ABI: list[AbiCheck] = []


def _abi_constants(private: bool = False, **constants: int) -> None:
    DARWIN_ABI.extend(AbiCheck(name, value, private) for name, value in constants.items())


def _abi_member(ctype: str, member: str, fmt: str, offset: int, private: bool = False,
                only_if: Optional[str] = None) -> None:
    """Record that ``member`` of ``ctype`` sits at ``offset`` and is ``fmt``'s size."""
    DARWIN_ABI.append(AbiCheck(f"offsetof({ctype}, {member})", offset, private, only_if))
    DARWIN_ABI.append(AbiCheck(f"sizeof((({ctype} *)0)->{member})", struct.calcsize(fmt), private, only_if))


def _abi_struct(ctype: str, layout: struct.Struct, members: tuple[str, ...], private: bool = False) -> None:
    """Record the members a format read from the start of ctype reads, at the offsets it gives them.

    ``members`` names each non-padding item of the format, in order.
    """
    items = [(int(count or 1), code) for count, code in re.findall(r"(\d*)([a-zA-Z?])", layout.format)]
    offset, names = 0, iter(members)
    for count, code in items:
        if code == "x":
            offset += count
            continue
        repeat, size = (1, count) if code == "s" else (count, struct.calcsize("<" + code))
        for _ in range(repeat):
            _abi_member(ctype, next(names), f"{size}s", offset, private)
            offset += size
    if next(names, None) is not None:
        raise AssertionError(f"{ctype}: more member names than items in {layout.format!r}")


# TCPS_* (bsd/netinet/tcp_fsm.h) = TSI_S_* (bsd/sys/proc_info.h), named as on
# Linux so that filters and tables do not depend on the platform.
_DARWIN_TCP_STATES = (
    # (name here, the C name after TCPS_ / TSI_S_)
    ("CLOSE", "CLOSED"), ("LISTEN", "LISTEN"), ("SYN_SENT", "SYN_SENT"),
    ("SYN_RECV", "SYN_RECEIVED"), ("ESTABLISHED", "ESTABLISHED"), ("CLOSE_WAIT", "_CLOSE_WAIT"),
    ("FIN_WAIT1", "FIN_WAIT_1"), ("CLOSING", "CLOSING"), ("LAST_ACK", "LAST_ACK"),
    ("FIN_WAIT2", "FIN_WAIT_2"), ("TIME_WAIT", "TIME_WAIT"),
)
# proc_info.h spells one name with two underscores (TSI_S__CLOSE_WAIT).
_abi_constants(**{f"TCPS_{c_name.lstrip('_')}": number for number, (_, c_name) in enumerate(_DARWIN_TCP_STATES)})
_abi_constants(**{f"TSI_S_{c_name}": number for number, (_, c_name) in enumerate(_DARWIN_TCP_STATES)})


def darwin_tcp_state_name(number: int) -> str:
    """Name of a macOS TCPS_* / TSI_S_* number, spelled as on Linux ("ESTABLISHED")."""
    if 0 <= number < len(_DARWIN_TCP_STATES):
        return _DARWIN_TCP_STATES[number][0]
    return f"UNKNOWN({number})"


def _ms_to_us(value: int) -> int:
    return value * 1000


def _decode_fields(buf: bytes, layout, fields: dict) -> None:
    """Set fields[name] for each (name, member, fmt, offset, convert) the buffer covers whole."""
    length = len(buf)
    for name, _member, fmt, offset, convert in layout:
        if offset + struct.calcsize(fmt) > length:
            continue
        (value,) = struct.unpack_from(fmt, buf, offset)
        fields[name] = convert(value) if convert else value


def _abi_fields(ctype: str, layout, private: bool = False, only_if: Optional[str] = None) -> None:
    for _name, member, fmt, offset, _convert in layout:
        _abi_member(ctype, member, fmt, offset, private, only_if)


# --- private struct tcp_info (getsockopt TCP_INFO = 0x200) [3] ----------------

# The header: state, options, snd_wscale, rcv_wscale.
_DARWIN_TCP_INFO_HEAD = struct.Struct("<4B")
_abi_struct("struct tcp_info", _DARWIN_TCP_INFO_HEAD,
            ("tcpi_state", "tcpi_options", "tcpi_snd_wscale", "tcpi_rcv_wscale"), private=True)

# The stable prefix: the same field list in every kernel from xnu-4570
# (macOS 10.13) to xnu-11417 (macOS 15), 292 bytes; then tcpi_rcv_srtt (296).
# Each entry: (TcpInfo attribute, C member, format, offset, conversion).
# Not decoded: tcpi_rttbest (offset 32) is the smallest srtt + rttvar the
# connection had, in the kernel's scaled units, not a minimum RTT sample, and
# tcpi_rcv_mss (16) holds t_maxseg, the send MSS: min_rtt_us and rcv_mss stay
# None rather than take a value that means something else than on Linux.
_DARWIN_TCP_INFO = (
    ("rto_us", "tcpi_rto", "<I", 8, lambda ms: ms * 1000 if ms else None),  # 0: no timer armed
    ("snd_mss", "tcpi_snd_mss", "<I", 12, None),
    ("rtt_us", "tcpi_srtt", "<I", 24, _ms_to_us),
    ("rttvar_us", "tcpi_rttvar", "<I", 28, _ms_to_us),
    ("snd_ssthresh_bytes", "tcpi_snd_ssthresh", "<I", 36, None),
    ("snd_cwnd_bytes", "tcpi_snd_cwnd", "<I", 40, None),
    ("rcv_wnd", "tcpi_rcv_space", "<I", 44, None),  # rcv_adv - rcv_nxt
    ("snd_wnd", "tcpi_snd_wnd", "<I", 48, None),
    # The two offsets the C send-buffer split reads (includes/darwin.h).
    ("send_buffer_bytes", "tcpi_snd_sbbytes", "<I", _fast.DARWIN_TCPI_SND_SBBYTES_OFFSET, None),
    ("segs_out", "tcpi_txpackets", "<Q", 68, None),
    ("bytes_sent", "tcpi_txbytes", "<Q", 76, None),
    ("bytes_retrans", "tcpi_txretransmitbytes", "<Q", 84, None),
    ("unacked_bytes", "tcpi_txunacked", "<Q", _fast.DARWIN_TCPI_TXUNACKED_OFFSET, None),  # snd_max - snd_una
    ("segs_in", "tcpi_rxpackets", "<Q", 100, None),
    ("bytes_received", "tcpi_rxbytes", "<Q", 108, None),
    ("rx_duplicate_bytes", "tcpi_rxduplicatebytes", "<Q", 116, None),
    ("rx_out_of_order_bytes", "tcpi_rxoutoforderbytes", "<Q", 124, None),
    ("snd_bw_bps", "tcpi_snd_bw", "<Q", 132, None),  # the kernel converts to bits/s
    ("rcv_ooopack", "tcpi_rcvoopack", "<I", 256, None),
    ("dsack_dups", "tcpi_dsack_recvd", "<I", 276, None),
    ("retransmitted_segs", "tcpi_txretransmitpackets", "<Q", 284, None),
    ("rcv_rtt_us", "tcpi_rcv_srtt", "<I", 292, _ms_to_us),  # xnu-8019+
)
_abi_fields("struct tcp_info", _DARWIN_TCP_INFO, private=True)

# Offsets 296-336 (AccECN state, ECN-capable packet counts, xnu-10002+) have
# no TcpInfo field.  Past 336 the layout moved between releases: 352 bytes
# (xnu-10063) ends with two timers there, 408 bytes (xnu-11215+) inserted
# seven L4S counters first.  They are trusted only when the length says 408.
DARWIN_TCP_INFO_L4S_SIZE = 408
# The kernel subtracts the AccECN counters' initial values (5 packets, 1
# byte), which are set only when AccECN was negotiated: without it the
# subtraction wraps (a u32 for the packet count), and the value is unknown.
_CE_PACKETS_WRAPPED = 2**32 - 5
_BYTES_WRAPPED = 2**64 - 1


def _ce_packets(value: int) -> Optional[int]:
    return None if value >= _CE_PACKETS_WRAPPED else value


def _accecn_bytes(value: int) -> Optional[int]:
    return None if value == _BYTES_WRAPPED else value


_DARWIN_TCP_INFO_L4S = (
    ("received_ce", "tcpi_received_ce_packets", "<Q", 336, _ce_packets),
    ("received_e0_bytes", "tcpi_received_ect0_bytes", "<Q", 344, _accecn_bytes),
    ("received_e1_bytes", "tcpi_received_ect1_bytes", "<Q", 352, _accecn_bytes),
    ("received_ce_bytes", "tcpi_received_ce_bytes", "<Q", 360, None),
    ("delivered_e0_bytes", "tcpi_delivered_ect0_bytes", "<Q", 368, _accecn_bytes),
    ("delivered_e1_bytes", "tcpi_delivered_ect1_bytes", "<Q", 376, _accecn_bytes),
    ("delivered_ce_bytes", "tcpi_delivered_ce_bytes", "<Q", 384, None),
)
_abi_fields("struct tcp_info", _DARWIN_TCP_INFO_L4S, private=True,
            only_if=f"sizeof(struct tcp_info) == {DARWIN_TCP_INFO_L4S_SIZE}")


def tcp_info_darwin(buf: bytes) -> TcpInfo:
    """Decode macOS's private ``struct tcp_info`` (TCP_INFO, 0x200) by its length.

    Fields past the returned length are ``None`` (older kernels return less:
    292 bytes up to macOS 11, 296, 336, 352, 408 on macOS 15).  RTTs are
    converted from ms to µs; ``rto_us`` is ``None`` when the kernel reports 0
    (no retransmission timer armed).  ``min_rtt_us`` and ``rcv_mss`` are
    ``None``: macOS keeps no minimum RTT sample (``tcpi_rttbest`` is the
    smallest srtt + rttvar) and no receive MSS (``tcpi_rcv_mss`` is the send
    MSS).  ``bytes_acked`` is derived, as macOS has no such counter:
    txbytes - txretransmitbytes - txunacked (off by the odd window-probe
    byte, which txbytes does not count).  The ECN/L4S counters after offset
    336 are decoded only from the 408-byte layout, the only one where their
    place is known.  ValueError under 8 bytes.
    """
    buf = bytes(buf)
    if len(buf) < 8:
        raise ValueError(f"macOS tcp_info of {len(buf)} bytes: the header alone is 8")
    state, options, snd_wscale, rcv_wscale = _DARWIN_TCP_INFO_HEAD.unpack_from(buf, 0)
    fields = {
        "state": darwin_tcp_state_name(state),
        "options": options,
        "snd_wscale": snd_wscale,
        "rcv_wscale": rcv_wscale,
    }
    _decode_fields(buf, _DARWIN_TCP_INFO, fields)
    if "unacked_bytes" in fields:
        # txbytes counts retransmissions too; what is left once they and the
        # unacked bytes are taken away was acknowledged (one struct, one moment).
        fields["bytes_acked"] = max(
            fields["bytes_sent"] - fields["bytes_retrans"] - fields["unacked_bytes"], 0)
    if len(buf) == DARWIN_TCP_INFO_L4S_SIZE:
        _decode_fields(buf, _DARWIN_TCP_INFO_L4S, fields)
    return TcpInfo(**fields)


def send_buffer_darwin(tcp_info: bytes, sndbuf: int) -> SendBuffer:
    """The macOS send-buffer split from one private ``tcp_info`` and SO_SNDBUF.

    ``tcpi_snd_sbbytes`` (the send buffer's ``sb_cc``: unacked + unsent) and
    ``tcpi_txunacked`` come from the same struct, so the split is one moment;
    ``unacked`` is capped at the buffer's count (SYN and FIN take sequence
    space but no buffer bytes).  The decoder ``send_buffer`` runs on macOS.
    ValueError when the struct is too short to hold ``tcpi_txunacked`` or
    belongs to a listening socket.
    """
    return _fast.decode_send_buffer_darwin(tcp_info, sndbuf)


# --- public struct tcp_connection_info (TCP_CONNECTION_INFO = 0x106) [3] ------

_DARWIN_TCP_CONNECTION_INFO_HEAD = struct.Struct("<3B")
_abi_struct("struct tcp_connection_info", _DARWIN_TCP_CONNECTION_INFO_HEAD,
            ("tcpi_state", "tcpi_snd_wscale", "tcpi_rcv_wscale"))

_DARWIN_TCP_CONNECTION_INFO = (
    ("options", "tcpi_options", "<I", 4, None),
    ("rto_us", "tcpi_rto", "<I", 12, lambda ms: ms * 1000 if ms else None),
    ("snd_mss", "tcpi_maxseg", "<I", 16, None),
    ("snd_ssthresh_bytes", "tcpi_snd_ssthresh", "<I", 20, None),
    ("snd_cwnd_bytes", "tcpi_snd_cwnd", "<I", 24, None),
    ("snd_wnd", "tcpi_snd_wnd", "<I", 28, None),
    ("send_buffer_bytes", "tcpi_snd_sbbytes", "<I", 32, None),
    ("rcv_wnd", "tcpi_rcv_wnd", "<I", 36, None),
    ("rtt_us", "tcpi_srtt", "<I", 44, _ms_to_us),
    ("rttvar_us", "tcpi_rttvar", "<I", 48, _ms_to_us),
    ("segs_out", "tcpi_txpackets", "<Q", 56, None),
    ("bytes_sent", "tcpi_txbytes", "<Q", 64, None),
    ("bytes_retrans", "tcpi_txretransmitbytes", "<Q", 72, None),
    ("segs_in", "tcpi_rxpackets", "<Q", 80, None),
    ("bytes_received", "tcpi_rxbytes", "<Q", 88, None),
    ("rx_out_of_order_bytes", "tcpi_rxoutoforderbytes", "<Q", 96, None),
    ("retransmitted_segs", "tcpi_txretransmitpackets", "<Q", 104, None),  # 112-byte layout, 10.13+
)
_abi_fields("struct tcp_connection_info", _DARWIN_TCP_CONNECTION_INFO)


def tcp_connection_info_darwin(buf: bytes) -> TcpInfo:
    """Decode macOS's public ``struct tcp_connection_info`` by its length.

    112 bytes since macOS 10.13 (104 before: no ``retransmitted_segs``);
    fields past the returned length are ``None``.  ValueError under 8 bytes.
    """
    buf = bytes(buf)
    if len(buf) < 8:
        raise ValueError(f"tcp_connection_info of {len(buf)} bytes: the header alone is 8")
    state, snd_wscale, rcv_wscale = _DARWIN_TCP_CONNECTION_INFO_HEAD.unpack_from(buf, 0)
    fields = {
        "state": darwin_tcp_state_name(state),
        "snd_wscale": snd_wscale,
        "rcv_wscale": rcv_wscale,
    }
    _decode_fields(buf, _DARWIN_TCP_CONNECTION_INFO, fields)
    return TcpInfo(**fields)


def merge_tcp_info_darwin(private: Optional[TcpInfo], public: Optional[TcpInfo]) -> TcpInfo:
    """One TcpInfo from the private tcp_info and the public tcp_connection_info.

    Where both have a field, the public struct wins: it is the ABI Apple
    documents and keeps, while the private one "is subject to change".  The
    private struct adds what the public one lacks (``unacked_bytes``,
    ``snd_bw_bps``, ``rx_duplicate_bytes``, ...).  The two getsockopts are
    two moments, so e.g. ``unacked_bytes`` may exceed ``send_buffer_bytes``
    by what was acknowledged in between.  Either may be ``None`` (not read).
    """
    if public is None and private is None:
        raise ValueError("neither tcp_info nor tcp_connection_info was given")
    if public is None:
        return private  # type: ignore[return-value]
    if private is None:
        return public
    merged = {
        name: value if value is not None else getattr(private, name)
        for name, value in ((n, getattr(public, n)) for n in TCP_INFO_FIELDS)
    }
    return TcpInfo(**merged)


# --- libproc: PROC_PIDLISTFDS and PROC_PIDFDSOCKETINFO [4] --------------------

# PROX_FDTYPE_* (bsd/sys/proc_info.h); 8 is unused.
DARWIN_FD_TYPES = {
    0: "atalk", 1: "vnode", 2: "socket", 3: "pshm", 4: "psem", 5: "kqueue",
    6: "pipe", 7: "fsevents", 9: "netpolicy", 10: "channel", 11: "nexus",
}
_abi_constants(**{f"PROX_FDTYPE_{name.upper()}": number for number, name in DARWIN_FD_TYPES.items()})
_PROC_FDINFO = struct.Struct("<iI")
_abi_struct("struct proc_fdinfo", _PROC_FDINFO, ("proc_fd", "proc_fdtype"))
_abi_constants(**{"sizeof(struct proc_fdinfo)": _PROC_FDINFO.size})


def proc_fdlist_darwin(buf: bytes) -> list[tuple[int, str]]:
    """Decode a PROC_PIDLISTFDS answer: ``[(fd, type name), ...]``.

    Type names are the PROX_FDTYPE_* in lower case ("socket", "vnode",
    "netpolicy" for NECP descriptors, "channel" for Skywalk channels ...);
    an unknown type number is named "unknown(N)".  ValueError when the
    length is not a multiple of 8 or an fd is negative.
    """
    buf = bytes(buf)
    if len(buf) % _PROC_FDINFO.size:
        raise ValueError(f"fd list of {len(buf)} bytes is not a whole number of 8-byte entries")
    result = []
    for fd, fdtype in _PROC_FDINFO.iter_unpack(buf):
        if fd < 0:
            raise ValueError(f"negative fd {fd} in the fd list")
        result.append((fd, DARWIN_FD_TYPES.get(fdtype, f"unknown({fdtype})")))
    return result


class _Member(NamedTuple):
    """A member of struct socket_fdinfo the decoder reads: its C path, format, offset."""

    path: str
    fmt: str
    offset: int

    def read(self, buf: bytes) -> int:
        return struct.unpack_from(self.fmt, buf, self.offset)[0]


def _fdinfo_member(path: str, fmt: str, offset: int) -> _Member:
    _abi_member("struct socket_fdinfo", path, fmt, offset)
    return _Member(path, fmt, offset)


SOCKET_FDINFO_SIZE = 792
_abi_constants(**{"sizeof(struct socket_fdinfo)": SOCKET_FDINFO_SIZE,
                  "PROC_PIDFDSOCKETINFO_SIZE": SOCKET_FDINFO_SIZE})
_AF_UNIX, _AF_INET, _AF_INET6 = 1, 2, 30
_SOCKINFO_IN, _SOCKINFO_TCP, _SOCKINFO_UN = 1, 2, 3
_INI_IPV4, _INI_IPV6 = 0x1, 0x2
_SOCK_DGRAM, _IPPROTO_UDP = 2, 17
_DARWIN_SOCKET_TYPES = {1: "stream", 2: "dgram", 5: "seqpacket"}  # SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
_SO_ACCEPTCONN, _SOI_S_ISCONNECTED = 0x2, 0x2
_abi_constants(AF_UNIX=_AF_UNIX, AF_INET=_AF_INET, AF_INET6=_AF_INET6, SOCKINFO_IN=_SOCKINFO_IN,
               SOCKINFO_TCP=_SOCKINFO_TCP, SOCKINFO_UN=_SOCKINFO_UN, INI_IPV4=_INI_IPV4,
               INI_IPV6=_INI_IPV6, SOCK_STREAM=1, SOCK_DGRAM=_SOCK_DGRAM, SOCK_SEQPACKET=5,
               IPPROTO_UDP=_IPPROTO_UDP, SO_ACCEPTCONN=_SO_ACCEPTCONN,
               SOI_S_ISCONNECTED=_SOI_S_ISCONNECTED)
_INSI = "psi.soi_proto.pri_tcp.tcpsi_ini."
_SOI_SO = _fdinfo_member("psi.soi_so", "<Q", 160)
_SOI_TYPE = _fdinfo_member("psi.soi_type", "<i", 176)
_SOI_PROTOCOL = _fdinfo_member("psi.soi_protocol", "<i", 180)
_SOI_FAMILY = _fdinfo_member("psi.soi_family", "<i", 184)
_SOI_OPTIONS = _fdinfo_member("psi.soi_options", "<H", 188)
_SOI_STATE = _fdinfo_member("psi.soi_state", "<H", 192)
_SOI_QLEN = _fdinfo_member("psi.soi_qlen", "<H", 194)
_SOI_QLIMIT = _fdinfo_member("psi.soi_qlimit", "<H", 198)
_SOI_RCV_CC = _fdinfo_member("psi.soi_rcv.sbi_cc", "<I", 208)
_SOI_RCV_HIWAT = _fdinfo_member("psi.soi_rcv.sbi_hiwat", "<I", 212)
_SOI_SND_CC = _fdinfo_member("psi.soi_snd.sbi_cc", "<I", 232)
_SOI_SND_HIWAT = _fdinfo_member("psi.soi_snd.sbi_hiwat", "<I", 236)
_SOI_KIND = _fdinfo_member("psi.soi_kind", "<i", 256)
# Ports are the kernel's network-order u_short in the low bytes of an int.
_INSI_FPORT = _fdinfo_member(_INSI + "insi_fport", "<i", 264)
_INSI_LPORT = _fdinfo_member(_INSI + "insi_lport", "<i", 268)
_INSI_VFLAG = _fdinfo_member(_INSI + "insi_vflag", "<B", 288)
_INSI_FADDR = _fdinfo_member(_INSI + "insi_faddr", "16s", 296)
_INSI_LADDR = _fdinfo_member(_INSI + "insi_laddr", "16s", 312)
_TCPSI_STATE = _fdinfo_member("psi.soi_proto.pri_tcp.tcpsi_state", "<i", 344)
# un_sockinfo: the peer's socket id, then the bound address (a sockaddr_un:
# sun_len, sun_family, then sun_path, NUL-terminated, at most 104 bytes).
_UNSI = "psi.soi_proto.pri_un."
_UNSI_CONN_SO = _fdinfo_member(_UNSI + "unsi_conn_so", "<Q", 264)
_UNSI_SUN_LEN = _fdinfo_member(_UNSI + "unsi_addr.ua_sun.sun_len", "<B", 280)
_UNSI_SUN_PATH = _fdinfo_member(_UNSI + "unsi_addr.ua_sun.sun_path", "104s", 282)
_SUN_PATH_OFFSET, _SUN_PATH_SIZE = 2, 104
# in4in6_addr keeps an IPv4 address in its last 4 bytes.
_IN4IN6_ADDR4 = 12
_abi_member("struct in4in6_addr", "i46a_addr4", "4s", _IN4IN6_ADDR4)
_TSI_S_LISTEN = 1


def _darwin_address(buf: bytes, member: _Member, ipv4: bool) -> str:
    if ipv4:
        start = member.offset + _IN4IN6_ADDR4
        return socket.inet_ntop(socket.AF_INET, buf[start:start + 4])
    return socket.inet_ntop(socket.AF_INET6, buf[member.offset:member.offset + 16])


def _port(buf: bytes, member: _Member) -> int:
    return struct.unpack_from(">H", buf, member.offset)[0]


def socket_fdinfo_darwin(buf: bytes, fd: Optional[int] = None) -> Optional[SocketInfo]:
    """Decode a PROC_PIDFDSOCKETINFO answer (``struct socket_fdinfo``).

    TCP, UDP and UNIX sockets become structs (``kind``); ``None`` for any
    other (raw, kernel control, a type it does not know ...): such a socket
    is a normal answer, not an error.  UDP and UNIX: see
    _darwin_datagram_or_unix.  ``send_queue`` is the send
    buffer's byte count (``sbi_cc``: unacked + unsent), ``sndbuf`` its limit
    (``sbi_hiwat``), ``free`` = sndbuf - send_queue (never negative).
    ``unacked`` and ``unsent`` are ``None``: libproc does not split the
    queue, and the split (``tcpi_txunacked``) is readable only through the
    socket itself, and so is tcp_info: ``tcp`` is ``None``.  As on Linux, a
    listening socket has ``send_queue`` ``None`` and ``recv_queue`` is its
    accept queue (``soi_qlen``: connections ready, not yet accepted).
    ``fd`` is the descriptor the buffer was read for (the struct has none).
    ``inode``: macOS sockets have none, so it holds the kernel's opaque
    socket id (``soi_so``, a hashed address), which identifies the socket
    across samples as the inode does on Linux.
    The family follows ``insi_vflag``: an IPv6 socket connected to an
    IPv4-mapped peer has only INI_IPV4 and is reported as IPv4 with plain
    addresses; a dual-stack one (bound to ``::`` without IPV6_V6ONLY) has
    both flags and is IPv6.  ValueError under 792 bytes.
    """
    buf = bytes(buf)
    if len(buf) < SOCKET_FDINFO_SIZE:
        raise ValueError(f"socket_fdinfo of {len(buf)} bytes: it is {SOCKET_FDINFO_SIZE}")
    family = _SOI_FAMILY.read(buf)
    kind = _SOI_KIND.read(buf)
    if family == _AF_UNIX and kind == _SOCKINFO_UN:
        return _darwin_unix(buf, fd)
    if family not in (_AF_INET, _AF_INET6):
        return None
    vflag = _INSI_VFLAG.read(buf)
    if vflag & (_INI_IPV4 | _INI_IPV6):
        ipv4 = not vflag & _INI_IPV6
    else:
        ipv4 = family == _AF_INET
    if kind == _SOCKINFO_IN and _SOI_TYPE.read(buf) == _SOCK_DGRAM and _SOI_PROTOCOL.read(buf) == _IPPROTO_UDP:
        return _darwin_udp(buf, fd, ipv4)
    if kind != _SOCKINFO_TCP:
        return None
    send_queue = _SOI_SND_CC.read(buf)
    sndbuf = _SOI_SND_HIWAT.read(buf)
    state_number = _TCPSI_STATE.read(buf)
    listening = state_number == _TSI_S_LISTEN
    return SocketInfo(
        fd=fd,
        inode=_SOI_SO.read(buf),
        family="IPv4" if ipv4 else "IPv6",
        local_address=_darwin_address(buf, _INSI_LADDR, ipv4),
        local_port=_port(buf, _INSI_LPORT),
        remote_address=_darwin_address(buf, _INSI_FADDR, ipv4),
        remote_port=_port(buf, _INSI_FPORT),
        state=darwin_tcp_state_name(state_number),
        send_queue=None if listening else send_queue,
        unacked=None,
        unsent=None,
        free=max(sndbuf - send_queue, 0),
        sndbuf=sndbuf,
        recv_queue=(_SOI_QLEN if listening else _SOI_RCV_CC).read(buf),
        queue_delay_s=None,
        congestion=None,
        tcp=None,
        rcvbuf=_SOI_RCV_HIWAT.read(buf),
        backlog_limit=_SOI_QLIMIT.read(buf) if listening else None,
    )


def _darwin_udp(buf: bytes, fd: Optional[int], ipv4: bool) -> SocketInfo:
    """A UDP socket (SOCKINFO_IN, SOCK_DGRAM): the payload bytes waiting in
    its receive buffer and its send buffer (``sbi_cc``), their limits
    (``sbi_hiwat``); ESTABLISHED when connected to a peer (a remote port),
    else CLOSE, as Linux names them.  macOS counts no drops per socket:
    ``drops`` is None."""
    sndbuf, send_queue = _SOI_SND_HIWAT.read(buf), _SOI_SND_CC.read(buf)
    remote_port = _port(buf, _INSI_FPORT)
    return SocketInfo(
        fd=fd, inode=_SOI_SO.read(buf), family="IPv4" if ipv4 else "IPv6",
        local_address=_darwin_address(buf, _INSI_LADDR, ipv4), local_port=_port(buf, _INSI_LPORT),
        remote_address=_darwin_address(buf, _INSI_FADDR, ipv4), remote_port=remote_port,
        state="ESTABLISHED" if remote_port else "CLOSE",
        send_queue=send_queue, unacked=None, unsent=None, free=max(sndbuf - send_queue, 0),
        sndbuf=sndbuf, recv_queue=_SOI_RCV_CC.read(buf), queue_delay_s=None, congestion=None,
        tcp=None, kind="udp", socket_type="dgram", rcvbuf=_SOI_RCV_HIWAT.read(buf), drops=None)


def _darwin_unix(buf: bytes, fd: Optional[int]) -> Optional[SocketInfo]:
    """A UNIX socket (SOCKINFO_UN): its path (None when unbound; no abstract
    names on macOS), the payload bytes in its buffers (a stream's writer
    puts its bytes straight into the reader's receive buffer, so its own
    send buffer stays empty), and ``peer_inode``: the peer's socket id
    (``unsi_conn_so``), which is that socket's ``inode``.  A listener
    (SO_ACCEPTCONN) has ``recv_queue`` its backlog (``soi_qlen``) and
    ``backlog_limit`` the listen() limit (``soi_qlimit``).  ``drops`` is None."""
    socket_type = _DARWIN_SOCKET_TYPES.get(_SOI_TYPE.read(buf))
    if socket_type is None:
        return None
    listening = bool(_SOI_OPTIONS.read(buf) & _SO_ACCEPTCONN)
    path_length = min(max(_UNSI_SUN_LEN.read(buf) - _SUN_PATH_OFFSET, 0), _SUN_PATH_SIZE)
    path = _UNSI_SUN_PATH.read(buf)[:path_length].split(b"\0", 1)[0]
    sndbuf, send_queue = _SOI_SND_HIWAT.read(buf), _SOI_SND_CC.read(buf)
    state = ("LISTEN" if listening else "ESTABLISHED" if _SOI_STATE.read(buf) & _SOI_S_ISCONNECTED
             else "CLOSE")
    return SocketInfo(
        fd=fd, inode=_SOI_SO.read(buf), family="UNIX",
        local_address=path.decode("utf-8", "backslashreplace") if path else None, local_port=None,
        remote_address=None, remote_port=None, state=state,
        send_queue=None if listening else send_queue, unacked=None, unsent=None,
        free=None if listening else max(sndbuf - send_queue, 0), sndbuf=sndbuf,
        recv_queue=_SOI_QLEN.read(buf) if listening else _SOI_RCV_CC.read(buf),
        queue_delay_s=None, congestion=None, tcp=None, kind="unix", socket_type=socket_type,
        rcvbuf=_SOI_RCV_HIWAT.read(buf), drops=None,
        backlog_limit=_SOI_QLIMIT.read(buf) if listening else None,
        peer_inode=_UNSI_CONN_SO.read(buf) or None)


# --- interfaces: sysctl NET_RT_IFLIST2 [1] and IFMIB [2] ----------------------

RTM_VERSION = 5
RTM_IFINFO2 = 0x12
_AF_LINK = 18
_RTAX_IFP = 4
_RTAX_MAX = 8
_IFF_UP = 0x1
_abi_constants(RTM_VERSION=RTM_VERSION, RTM_IFINFO2=RTM_IFINFO2, AF_LINK=_AF_LINK,
               RTAX_IFP=_RTAX_IFP, RTAX_MAX=_RTAX_MAX, IFF_UP=_IFF_UP)
_MSG_PREFIX = struct.Struct("<HBB")
_abi_struct("struct if_msghdr", _MSG_PREFIX, ("ifm_msglen", "ifm_version", "ifm_type"))
# if_msghdr2 up to ifm_snd_drops (ifm_timer skipped), then if_data64.
_IF_MSGHDR2 = struct.Struct("<HBBIIH2xIII4x")
_abi_struct("struct if_msghdr2", _IF_MSGHDR2, (
    "ifm_msglen", "ifm_version", "ifm_type", "ifm_addrs", "ifm_flags", "ifm_index",
    "ifm_snd_len", "ifm_snd_maxlen", "ifm_snd_drops"))
_IFM_DATA = _IF_MSGHDR2.size
IF_MSGHDR2_SIZE = 160
_abi_constants(**{"offsetof(struct if_msghdr2, ifm_data)": _IFM_DATA,
                  "sizeof(struct if_msghdr2)": IF_MSGHDR2_SIZE})
_IF_DATA64 = struct.Struct("<8B2I12Q2I2i")
_abi_struct("struct if_data64", _IF_DATA64, (
    "ifi_type", "ifi_typelen", "ifi_physical", "ifi_addrlen", "ifi_hdrlen", "ifi_recvquota",
    "ifi_xmitquota", "ifi_unused1", "ifi_mtu", "ifi_metric",
    "ifi_baudrate", "ifi_ipackets", "ifi_ierrors", "ifi_opackets", "ifi_oerrors", "ifi_collisions",
    "ifi_ibytes", "ifi_obytes", "ifi_imcasts", "ifi_omcasts", "ifi_iqdrops", "ifi_noproto",
    "ifi_recvtiming", "ifi_xmittiming", "ifi_lastchange.tv_sec", "ifi_lastchange.tv_usec"))
_abi_constants(**{"sizeof(struct if_data64)": _IF_DATA64.size})
_SOCKADDR_DL = struct.Struct("<BBHBBBB")
_abi_struct("struct sockaddr_dl", _SOCKADDR_DL, (
    "sdl_len", "sdl_family", "sdl_index", "sdl_type", "sdl_nlen", "sdl_alen", "sdl_slen"))
_abi_constants(**{"offsetof(struct sockaddr_dl, sdl_data)": _SOCKADDR_DL.size})


def _if_data64_counters(buf: bytes, offset: int) -> dict:
    (
        _type, _typelen, _physical, _addrlen, _hdrlen, _recvquota, _xmitquota, _unused1,
        mtu, _metric,
        _baudrate, ipackets, ierrors, opackets, oerrors, _collisions,
        ibytes, obytes, _imcasts, _omcasts, iqdrops, _noproto,
        _recvtiming, _xmittiming, _lastchange_sec, _lastchange_usec,
    ) = _IF_DATA64.unpack_from(buf, offset)
    return {
        "mtu": mtu,
        "rx_bytes": ibytes,
        "tx_bytes": obytes,
        "rx_packets": ipackets,
        "tx_packets": opackets,
        "rx_errors": ierrors,
        "tx_errors": oerrors,
        "rx_drops": iqdrops,
    }


def _iflist2_link_name(buf: bytes, start: int, end: int, addrs: int) -> str:
    """The interface name from the RTA_IFP sockaddr_dl among a message's sockaddrs."""
    if addrs >> _RTAX_MAX:
        raise ValueError(f"address bitmask {addrs:#x} has bits past RTAX_MAX")
    offset = start
    for index in range(_RTAX_MAX):
        if not addrs & (1 << index):
            continue
        if offset >= end:
            raise ValueError("sockaddr past the end of its message")
        sa_len = buf[offset]
        step = (sa_len + 3) & ~3 or 4  # ROUNDUP32: 4 bytes for sa_len 0
        if offset + step > end:
            raise ValueError(f"sockaddr of {sa_len} bytes runs past its message")
        if index == _RTAX_IFP:
            if sa_len < _SOCKADDR_DL.size:
                raise ValueError(f"link-level sockaddr of {sa_len} bytes")
            _len, family, _index, _type, nlen, _alen, _slen = _SOCKADDR_DL.unpack_from(buf, offset)
            if family != _AF_LINK:
                raise ValueError(f"RTA_IFP sockaddr of family {family}, not AF_LINK")
            if nlen == 0 or _SOCKADDR_DL.size + nlen > sa_len:
                raise ValueError(f"interface name of {nlen} bytes in a {sa_len}-byte sockaddr_dl")
            name = buf[offset + 8:offset + 8 + nlen]
            try:
                return name.decode("ascii")
            except UnicodeDecodeError:
                raise ValueError(f"interface name {name!r} is not ASCII") from None
        offset += step
    raise ValueError("RTM_IFINFO2 message without a link-level (RTA_IFP) address")


def iflist2_darwin(buf: bytes) -> dict[str, InterfaceCounters]:
    """Decode a ``sysctl(NET_RT_IFLIST2)`` dump: counters per interface name.

    Walks the messages by ``msglen`` and each RTM_IFINFO2 message's sockaddrs
    by its ``addrs`` bitmask (a gateway left over from the previous
    interface's multicast records may come before the link address);
    address and multicast messages are skipped.  ``rx_bytes``/``tx_bytes``
    here are what the kernel gives unsigned programs: rounded down to 1 KiB
    and wrapped at 4 GiB (sockdiag.interfaces replaces them with IFMIB's).
    ``tx_drops`` is the send queue's drop count.  ValueError on a truncated
    or malformed dump (a zero or unaligned ``msglen``, a message past the
    end, a wrong RTM version, a duplicate or missing interface name).
    """
    buf = bytes(buf)
    result: dict[str, InterfaceCounters] = {}
    offset = 0
    end = len(buf)
    while offset < end:
        if end - offset < _MSG_PREFIX.size:
            raise ValueError(f"truncated route message header at offset {offset}")
        msglen, version, msgtype = _MSG_PREFIX.unpack_from(buf, offset)
        if msglen < _MSG_PREFIX.size or msglen % 4:
            raise ValueError(f"route message length {msglen} at offset {offset}")
        if offset + msglen > end:
            raise ValueError(
                f"route message at offset {offset} claims {msglen} bytes, {end - offset} left")
        if version != RTM_VERSION:
            raise ValueError(f"route message version {version} at offset {offset}, expected {RTM_VERSION}")
        if msgtype == RTM_IFINFO2:
            if msglen < IF_MSGHDR2_SIZE:
                raise ValueError(f"RTM_IFINFO2 message of {msglen} bytes, the header is {IF_MSGHDR2_SIZE}")
            _l, _v, _t, addrs, flags, index, _snd_len, _snd_maxlen, snd_drops = (
                _IF_MSGHDR2.unpack_from(buf, offset))
            name = _iflist2_link_name(buf, offset + IF_MSGHDR2_SIZE, offset + msglen, addrs)
            if name in result:
                raise ValueError(f"interface {name!r} appears twice")
            result[name] = InterfaceCounters(
                name=name,
                index=index,
                is_up=bool(flags & _IFF_UP),
                tx_drops=snd_drops,
                **_if_data64_counters(buf, offset + _IFM_DATA),
            )
        offset += msglen
    return result


IFMIBDATA_SIZE = 180
_IFMIBDATA_HEAD = struct.Struct("<16s5I")
_abi_struct("struct ifmibdata", _IFMIBDATA_HEAD, (
    "ifmd_name", "ifmd_pcount", "ifmd_flags", "ifmd_snd_len", "ifmd_snd_maxlen", "ifmd_snd_drops"))
_IFMD_DATA = 52
_abi_constants(**{"offsetof(struct ifmibdata, ifmd_data)": _IFMD_DATA,
                  "sizeof(struct ifmibdata)": IFMIBDATA_SIZE})


def ifmibdata_darwin(buf: bytes, index: Optional[int] = None) -> Optional[InterfaceCounters]:
    """Decode one IFMIB_IFDATA/IFDATA_GENERAL answer (``struct ifmibdata``).

    Byte counters here are exact 64-bit values (no 1 KiB rounding, no 4 GiB
    wrap).  ``index`` is the interface index the caller asked for (the
    struct has none).  Returns ``None`` for an empty name: the kernel's
    answer for an index whose interface is not attached.  ValueError unless
    ``buf`` is 180 bytes or when the name is not NUL-terminated ASCII.
    """
    buf = bytes(buf)
    if len(buf) != IFMIBDATA_SIZE:
        raise ValueError(f"ifmibdata of {len(buf)} bytes: it is {IFMIBDATA_SIZE}")
    raw_name, _pcount, flags, _snd_len, _snd_maxlen, snd_drops = _IFMIBDATA_HEAD.unpack_from(buf, 0)
    if b"\0" not in raw_name:
        raise ValueError(f"ifmd_name {raw_name!r} is not NUL-terminated")
    raw_name = raw_name.split(b"\0", 1)[0]
    if not raw_name:
        return None
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise ValueError(f"interface name {raw_name!r} is not ASCII") from None
    return InterfaceCounters(
        name=name,
        index=index,
        is_up=bool(flags & _IFF_UP),
        tx_drops=snd_drops,
        **_if_data64_counters(buf, _IFMD_DATA),
    )


def rtnl_link_stats64(buf: bytes) -> LinkStats64:
    """Decode a Linux ``IFLA_STATS64`` payload (``struct rtnl_link_stats64``).

    Decoded by its length: fields a shorter (older kernel's) struct lacks are
    ``None``, bytes past the newest known layout (200 bytes, Linux 6.18) are
    ignored.  ValueError under 184 bytes (the oldest layout, Linux 2.6.35).
    The rtnetlink dumps behind ``sockdiag.interfaces()`` decode with the same
    routine.
    """
    return _fast.decode_link_stats64(buf)


def rtnl_link_dump(buf: bytes) -> dict[str, InterfaceCounters]:
    """Decode a whole rtnetlink ``RTM_GETLINK`` dump: {interface name: InterfaceCounters}.

    ``buf`` is the datagrams the kernel sent, concatenated, up to and
    including ``NLMSG_DONE``.  ValueError when a length points outside the
    buffer, a link message lacks its name, an ``IFLA_STATS64`` is shorter
    than any kernel's struct, the dump carries an ``NLMSG_ERROR``, was
    interrupted (``NLM_F_DUMP_INTR``: not one snapshot) or does not end in
    ``NLMSG_DONE``.  Links without ``IFLA_STATS64`` have ``None`` counters.
    """
    return _fast.decode_rtnl_link_dump(buf)


def tcp_destroy_event_linux(buf: bytes) -> TcpDestroyEvent:
    """Decode one Linux socket-destroy notification (an inet_diag_msg payload).

    ``buf`` is the netlink message's payload: ``struct inet_diag_msg`` and
    its attributes, as the SKNLGRP_INET(6)_TCP_DESTROY groups send it.
    ``tcp`` is decoded by tcp_info_linux's decoder (``None`` without an
    INET_DIAG_INFO attribute).  ValueError for truncated or malformed input.
    """
    return _fast.decode_inet_diag_msg(buf)
