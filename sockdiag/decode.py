"""Pure decoders of kernel buffers, callable on every platform from bytes.

Each takes the bytes a kernel call returned and gives a record.  Short,
truncated or hostile input raises ValueError; nothing reads out of bounds.
The Linux decoders run in _fast (the compiler lays out the bit-fields); the
macOS ones are struct-based, following shared/reference/macos-abi.md.
"""

from __future__ import annotations

import socket
import struct
from typing import Optional

from . import _fast
from ._common import TCP_INFO_FIELDS, InterfaceCounters, LinkStats64, SocketInfo, TcpDestroyEvent, TcpInfo


def tcp_info_linux(buf: bytes) -> TcpInfo:
    """Decode a Linux ``struct tcp_info`` of whatever length a kernel returned.

    Fields past the end of ``buf`` are ``None``; bytes past the newest known
    layout (280 bytes, Linux 6.18) are ignored.  ValueError under 8 bytes.
    """
    return _fast.decode_tcp_info_linux(buf)


def inet_diag_dump(buf: bytes, fds: Optional[dict[int, int]] = None) -> list[SocketInfo]:
    """Decode the bytes of a Linux NETLINK_SOCK_DIAG TCP dump into SocketInfo.

    ``buf`` holds whole netlink messages (what one or more ``recv`` returned,
    NLMSG_DONE included or not).  ``fds`` maps socket inode -> fd: only those
    sockets become records, carrying their fd; ``None`` decodes every socket
    (``fd`` is then ``None``).  The same decoder as process_sockets.
    ValueError for malformed input; OSError for a kernel NLMSG_ERROR message.
    """
    return _fast.decode_inet_diag_dump(buf, fds)


# =============================================================================
# macOS (XNU).  Layouts, offsets and constants from
# shared/reference/macos-abi.md (sections in brackets); everything is
# little-endian and read with struct.unpack_from, never by casting, because
# the kernel packs 8-byte counters at 4-byte offsets.

_DARWIN_TCP_STATES = (
    # TCPS_* (bsd/netinet/tcp_fsm.h) = TSI_S_*, named as on Linux so that
    # filters and tables do not depend on the platform.
    "CLOSE", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT",
    "FIN_WAIT1", "CLOSING", "LAST_ACK", "FIN_WAIT2", "TIME_WAIT",
)


def darwin_tcp_state_name(number: int) -> str:
    """Name of a macOS TCPS_* / TSI_S_* number, spelled as on Linux ("ESTABLISHED")."""
    if 0 <= number < len(_DARWIN_TCP_STATES):
        return _DARWIN_TCP_STATES[number]
    return f"UNKNOWN({number})"


def _ms_to_us(value: int) -> int:
    return value * 1000


def _decode_fields(buf: bytes, layout, fields: dict) -> None:
    """Set fields[name] for each (name, fmt, offset, convert) the buffer covers whole."""
    length = len(buf)
    for name, fmt, offset, convert in layout:
        if offset + struct.calcsize(fmt) > length:
            continue
        (value,) = struct.unpack_from(fmt, buf, offset)
        fields[name] = convert(value) if convert else value


# --- private struct tcp_info (getsockopt TCP_INFO = 0x200) [3] ----------------

# The stable prefix: the same field list in every kernel from xnu-4570
# (macOS 10.13) to xnu-11417 (macOS 15), 292 bytes; then tcpi_rcv_srtt (296).
# Each entry: (TcpInfo attribute, format, offset, conversion).
_DARWIN_TCP_INFO = (
    ("rto_us", "<I", 8, lambda ms: ms * 1000 if ms else None),  # 0: no timer armed
    ("snd_mss", "<I", 12, None),
    ("rcv_mss", "<I", 16, None),
    ("rtt_us", "<I", 24, _ms_to_us),  # tcpi_srtt
    ("rttvar_us", "<I", 28, _ms_to_us),
    ("min_rtt_us", "<I", 32, _ms_to_us),  # tcpi_rttbest
    ("snd_ssthresh_bytes", "<I", 36, None),
    ("snd_cwnd_bytes", "<I", 40, None),
    ("rcv_wnd", "<I", 44, None),  # tcpi_rcv_space is rcv_adv - rcv_nxt
    ("snd_wnd", "<I", 48, None),
    ("send_buffer_bytes", "<I", 64, None),  # tcpi_snd_sbbytes
    ("segs_out", "<Q", 68, None),  # tcpi_txpackets
    ("bytes_sent", "<Q", 76, None),
    ("bytes_retrans", "<Q", 84, None),
    ("unacked_bytes", "<Q", 92, None),  # tcpi_txunacked = snd_max - snd_una
    ("segs_in", "<Q", 100, None),  # tcpi_rxpackets
    ("bytes_received", "<Q", 108, None),
    ("rx_duplicate_bytes", "<Q", 116, None),
    ("rx_out_of_order_bytes", "<Q", 124, None),
    ("snd_bw_bps", "<Q", 132, None),  # the kernel converts to bits/s
    ("rcv_ooopack", "<I", 256, None),  # tcpi_rcvoopack
    ("dsack_dups", "<I", 276, None),  # tcpi_dsack_recvd
    ("retransmitted_segs", "<Q", 284, None),  # tcpi_txretransmitpackets
    ("rcv_rtt_us", "<I", 292, _ms_to_us),  # tcpi_rcv_srtt, xnu-8019+
)

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
    ("received_ce", "<Q", 336, _ce_packets),  # tcpi_received_ce_packets
    ("received_e0_bytes", "<Q", 344, _accecn_bytes),
    ("received_e1_bytes", "<Q", 352, _accecn_bytes),
    ("received_ce_bytes", "<Q", 360, None),
    ("delivered_e0_bytes", "<Q", 368, _accecn_bytes),
    ("delivered_e1_bytes", "<Q", 376, _accecn_bytes),
    ("delivered_ce_bytes", "<Q", 384, None),
)

def tcp_info_darwin(buf: bytes) -> TcpInfo:
    """Decode macOS's private ``struct tcp_info`` (TCP_INFO, 0x200) by its length.

    Fields past the returned length are ``None`` (older kernels return less:
    292 bytes up to macOS 11, 296, 336, 352, 408 on macOS 15).  RTTs are
    converted from ms to µs; ``rto_us`` is ``None`` when the kernel reports 0
    (no retransmission timer armed).  ``bytes_acked`` is derived, as macOS
    has no such counter: txbytes - txretransmitbytes - txunacked (off by the
    odd window-probe byte, which txbytes does not count).  The ECN/L4S counters after offset 336
    are decoded only from the 408-byte layout, the only one where their
    place is known.  ValueError under 8 bytes.
    """
    buf = bytes(buf)
    if len(buf) < 8:
        raise ValueError(f"macOS tcp_info of {len(buf)} bytes: the header alone is 8")
    state, options, snd_wscale, rcv_wscale = struct.unpack_from("<4B", buf, 0)
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


# --- public struct tcp_connection_info (TCP_CONNECTION_INFO = 0x106) [3] ------

_DARWIN_TCP_CONNECTION_INFO = (
    ("options", "<I", 4, None),
    ("rto_us", "<I", 12, lambda ms: ms * 1000 if ms else None),
    ("snd_mss", "<I", 16, None),  # tcpi_maxseg
    ("snd_ssthresh_bytes", "<I", 20, None),
    ("snd_cwnd_bytes", "<I", 24, None),
    ("snd_wnd", "<I", 28, None),
    ("send_buffer_bytes", "<I", 32, None),
    ("rcv_wnd", "<I", 36, None),
    ("rtt_us", "<I", 44, _ms_to_us),
    ("rttvar_us", "<I", 48, _ms_to_us),
    ("segs_out", "<Q", 56, None),
    ("bytes_sent", "<Q", 64, None),
    ("bytes_retrans", "<Q", 72, None),
    ("segs_in", "<Q", 80, None),
    ("bytes_received", "<Q", 88, None),
    ("rx_out_of_order_bytes", "<Q", 96, None),
    ("retransmitted_segs", "<Q", 104, None),  # 112-byte layout, macOS 10.13+
)


def tcp_connection_info_darwin(buf: bytes) -> TcpInfo:
    """Decode macOS's public ``struct tcp_connection_info`` by its length.

    112 bytes since macOS 10.13 (104 before: no ``retransmitted_segs``);
    fields past the returned length are ``None``.  ValueError under 8 bytes.
    """
    buf = bytes(buf)
    if len(buf) < 8:
        raise ValueError(f"tcp_connection_info of {len(buf)} bytes: the header alone is 8")
    state, snd_wscale, rcv_wscale = struct.unpack_from("<3B", buf, 0)
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
    ``min_rtt_us``, ``snd_bw_bps``, ``rcv_mss``, ...).  The two getsockopts are
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
_PROC_FDINFO = struct.Struct("<iI")


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


SOCKET_FDINFO_SIZE = 792  # struct socket_fdinfo
_AF_INET, _AF_INET6 = 2, 30
_SOCKINFO_TCP = 2
_INI_IPV4, _INI_IPV6 = 0x1, 0x2
# Offsets inside socket_fdinfo (= 24 + offset inside socket_info).
_SOI_SO = 160
_SOI_FAMILY = 184
_SOI_QLEN = 194
_SOI_RCV_CC = 208
_SOI_SND_CC, _SOI_SND_HIWAT = 232, 236
_SOI_KIND = 256
_INSI_FPORT, _INSI_LPORT = 264, 268
_INSI_VFLAG = 288
_INSI_FADDR, _INSI_LADDR = 296, 312
_TCPSI_STATE = 344
_TSI_S_LISTEN = 1


def _darwin_address(buf: bytes, offset: int, ipv4: bool) -> str:
    # in4in6_addr keeps an IPv4 address in its last 4 bytes.
    if ipv4:
        return socket.inet_ntop(socket.AF_INET, buf[offset + 12:offset + 16])
    return socket.inet_ntop(socket.AF_INET6, buf[offset:offset + 16])


def socket_fdinfo_darwin(buf: bytes, fd: Optional[int] = None) -> Optional[SocketInfo]:
    """Decode a PROC_PIDFDSOCKETINFO answer (``struct socket_fdinfo``).

    Returns ``None`` for sockets that are not TCP over IPv4/IPv6 (UNIX,
    UDP, kernel control ...): process_sockets lists TCP only, and such a
    socket is a normal answer, not an error.  ``send_queue`` is the send
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
    The family follows ``insi_vflag``, so an IPv6 socket connected to an
    IPv4-mapped peer is reported as IPv4.  ValueError under 792 bytes.
    """
    buf = bytes(buf)
    if len(buf) < SOCKET_FDINFO_SIZE:
        raise ValueError(f"socket_fdinfo of {len(buf)} bytes: it is {SOCKET_FDINFO_SIZE}")
    (family,) = struct.unpack_from("<i", buf, _SOI_FAMILY)
    (kind,) = struct.unpack_from("<i", buf, _SOI_KIND)
    if family not in (_AF_INET, _AF_INET6) or kind != _SOCKINFO_TCP:
        return None
    vflag = buf[_INSI_VFLAG]
    if vflag & _INI_IPV4:
        ipv4 = True
    elif vflag & _INI_IPV6:
        ipv4 = False
    else:
        ipv4 = family == _AF_INET
    # Ports are the kernel's network-order u_short in the low bytes of an int.
    (remote_port,) = struct.unpack_from(">H", buf, _INSI_FPORT)
    (local_port,) = struct.unpack_from(">H", buf, _INSI_LPORT)
    (socket_id,) = struct.unpack_from("<Q", buf, _SOI_SO)
    send_queue, sndbuf = struct.unpack_from("<II", buf, _SOI_SND_CC)
    (state_number,) = struct.unpack_from("<i", buf, _TCPSI_STATE)
    listening = state_number == _TSI_S_LISTEN
    (recv_queue,) = struct.unpack_from("<H" if listening else "<I", buf,
                                       _SOI_QLEN if listening else _SOI_RCV_CC)
    return SocketInfo(
        fd=fd,
        inode=socket_id,
        family="IPv4" if ipv4 else "IPv6",
        local_address=_darwin_address(buf, _INSI_LADDR, ipv4),
        local_port=local_port,
        remote_address=_darwin_address(buf, _INSI_FADDR, ipv4),
        remote_port=remote_port,
        state=darwin_tcp_state_name(state_number),
        send_queue=None if listening else send_queue,
        unacked=None,
        unsent=None,
        free=max(sndbuf - send_queue, 0),
        sndbuf=sndbuf,
        recv_queue=recv_queue,
        queue_delay_s=None,
        congestion=None,
        tcp=None,
    )


# --- interfaces: sysctl NET_RT_IFLIST2 [1] and IFMIB [2] ----------------------

RTM_VERSION = 5
RTM_IFINFO2 = 0x12
_AF_LINK = 18
_RTAX_IFP = 4
_RTAX_MAX = 8
_IFF_UP = 0x1
_MSG_PREFIX = struct.Struct("<HBB")
# if_msghdr2 up to ifm_snd_drops, then if_data64 (at 32).
# msglen version type addrs flags index snd_len snd_maxlen snd_drops (timer skipped)
_IF_MSGHDR2 = struct.Struct("<HBBIIH2xIII4x")
IF_MSGHDR2_SIZE = 160
_IF_DATA64 = struct.Struct("<8B2I12Q2I2i")
_SOCKADDR_DL = struct.Struct("<BBHBBBB")


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
                **_if_data64_counters(buf, offset + 32),
            )
        offset += msglen
    return result


IFMIBDATA_SIZE = 180  # struct ifmibdata
_IFMIBDATA_HEAD = struct.Struct("<16s5I")  # name pcount flags snd_len snd_maxlen snd_drops


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
        **_if_data64_counters(buf, 52),
    )


def rtnl_link_stats64(buf: bytes) -> LinkStats64:
    """Decode a Linux ``IFLA_STATS64`` payload (``struct rtnl_link_stats64``).

    Decoded by its length: fields a shorter (older kernel's) struct lacks are
    ``None``, bytes past the newest known layout (200 bytes, Linux 6.18) are
    ignored.  ValueError under 184 bytes (the oldest layout, Linux 2.6.35).
    The rtnetlink dump behind ``sockdiag.interfaces()`` decodes with the same
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
