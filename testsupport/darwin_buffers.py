"""Builders of macOS kernel buffers, retyped from shared/reference/macos-abi.md.

Independent of sockdiag.decode on purpose: offsets and formats here are
copied from the reference's tables, so a decoder that drifts from them fails.
"""

from __future__ import annotations

import socket
import struct

# --- private tcp_info (section 3): (name, format, offset) --------------------
TCP_INFO_LAYOUT = {
    "tcpi_state": ("B", 0), "tcpi_options": ("B", 1),
    "tcpi_snd_wscale": ("B", 2), "tcpi_rcv_wscale": ("B", 3),
    "tcpi_flags": ("I", 4), "tcpi_rto": ("I", 8), "tcpi_snd_mss": ("I", 12),
    "tcpi_rcv_mss": ("I", 16), "tcpi_rttcur": ("I", 20), "tcpi_srtt": ("I", 24),
    "tcpi_rttvar": ("I", 28), "tcpi_rttbest": ("I", 32), "tcpi_snd_ssthresh": ("I", 36),
    "tcpi_snd_cwnd": ("I", 40), "tcpi_rcv_space": ("I", 44), "tcpi_snd_wnd": ("I", 48),
    "tcpi_snd_nxt": ("I", 52), "tcpi_rcv_nxt": ("I", 56), "tcpi_last_outif": ("i", 60),
    "tcpi_snd_sbbytes": ("I", 64), "tcpi_txpackets": ("Q", 68), "tcpi_txbytes": ("Q", 76),
    "tcpi_txretransmitbytes": ("Q", 84), "tcpi_txunacked": ("Q", 92),
    "tcpi_rxpackets": ("Q", 100), "tcpi_rxbytes": ("Q", 108),
    "tcpi_rxduplicatebytes": ("Q", 116), "tcpi_rxoutoforderbytes": ("Q", 124),
    "tcpi_snd_bw": ("Q", 132), "tcpi_synrexmits": ("B", 140),
    "tcpi_cell_rxpackets": ("Q", 144), "tcpi_wired_txbytes": ("Q", 232),
    "tcpi_rcvoopack": ("I", 256), "tcpi_reordered_pkts": ("I", 268),
    "tcpi_dsack_sent": ("I", 272), "tcpi_dsack_recvd": ("I", 276),
    "tcpi_flowhash": ("I", 280), "tcpi_txretransmitpackets": ("Q", 284),
    "tcpi_rcv_srtt": ("I", 292),
    "tcpi_client_accecn_state": ("I", 296), "tcpi_ecn_capable_packets_lost": ("Q", 328),
}
# The tail past 336 by layout size.
TCP_INFO_TAIL = {
    352: {"tcpi_flow_control_total_time": ("Q", 336), "tcpi_rcvwnd_limited_total_time": ("Q", 344)},
    408: {
        "tcpi_received_ce_packets": ("Q", 336), "tcpi_received_ect0_bytes": ("Q", 344),
        "tcpi_received_ect1_bytes": ("Q", 352), "tcpi_received_ce_bytes": ("Q", 360),
        "tcpi_delivered_ect0_bytes": ("Q", 368), "tcpi_delivered_ect1_bytes": ("Q", 376),
        "tcpi_delivered_ce_bytes": ("Q", 384), "tcpi_flow_control_total_time": ("Q", 392),
        "tcpi_rcvwnd_limited_total_time": ("Q", 400),
    },
}
TCP_INFO_SIZES = (292, 296, 336, 352, 408)


def tcp_info(size: int, **values: int) -> bytes:
    """A private tcp_info of the given historical size; fields past it are dropped."""
    layout = dict(TCP_INFO_LAYOUT)
    layout.update(TCP_INFO_TAIL.get(size, {}))
    buf = bytearray(max(size, 408))
    for name, value in values.items():
        fmt, offset = layout[name]
        struct.pack_into("<" + fmt, buf, offset, value)
    return bytes(buf[:size])


# --- public tcp_connection_info (section 3) -----------------------------------
TCP_CONNECTION_INFO_FORMAT = "<4B13I7Q"  # 112 bytes
TCP_CONNECTION_INFO_NAMES = (
    "tcpi_state", "tcpi_snd_wscale", "tcpi_rcv_wscale", "pad1",
    "tcpi_options", "tcpi_flags", "tcpi_rto", "tcpi_maxseg", "tcpi_snd_ssthresh",
    "tcpi_snd_cwnd", "tcpi_snd_wnd", "tcpi_snd_sbbytes", "tcpi_rcv_wnd",
    "tcpi_rttcur", "tcpi_srtt", "tcpi_rttvar", "tfo_bits",
    "tcpi_txpackets", "tcpi_txbytes", "tcpi_txretransmitbytes", "tcpi_rxpackets",
    "tcpi_rxbytes", "tcpi_rxoutoforderbytes", "tcpi_txretransmitpackets",
)


def tcp_connection_info(size: int = 112, **values: int) -> bytes:
    unknown = set(values) - set(TCP_CONNECTION_INFO_NAMES)
    assert not unknown, unknown
    fields = [values.get(name, 0) for name in TCP_CONNECTION_INFO_NAMES]
    return struct.pack(TCP_CONNECTION_INFO_FORMAT, *fields)[:size]


# --- libproc (section 4) ------------------------------------------------------
AF_INET, AF_INET6, AF_UNIX = 2, 30, 1
SOCKINFO_IN, SOCKINFO_TCP, SOCKINFO_UN = 1, 2, 3
INI_IPV4, INI_IPV6 = 0x1, 0x2


def fd_list(entries) -> bytes:
    """PROC_PIDLISTFDS answer from [(fd, fdtype number)]."""
    return b"".join(struct.pack("<iI", fd, fdtype) for fd, fdtype in entries)


def _in4in6(address: str) -> bytes:
    return bytes(12) + socket.inet_pton(socket.AF_INET, address)


def socket_fdinfo(
    *, family=AF_INET, kind=SOCKINFO_TCP, vflag=None, local=("127.0.0.1", 0),
    remote=("127.0.0.1", 0), snd_cc=0, snd_hiwat=0, rcv_cc=0, rcv_hiwat=0, state=4, mss=0, qlen=0,
    so=0xFFFFFF80_12345678, sotype=0, protocol=0, options=0, soi_state=0, qlimit=0,
    unix_path=None, conn_so=0,
) -> bytes:
    """A 792-byte struct socket_fdinfo with the fields process_sockets reads
    (unix_path, conn_so: un_sockinfo's, written instead of in_sockinfo's)."""
    buf = bytearray(792)
    struct.pack_into("<Q", buf, 24 + 136, so)  # soi_so
    struct.pack_into("<ii", buf, 24 + 152, sotype, protocol)  # soi_type, soi_protocol
    struct.pack_into("<i", buf, 24 + 160, family)  # soi_family
    struct.pack_into("<H", buf, 24 + 164, options)  # soi_options
    struct.pack_into("<H", buf, 24 + 168, soi_state)  # soi_state
    struct.pack_into("<h", buf, 24 + 170, qlen)  # soi_qlen
    struct.pack_into("<h", buf, 24 + 174, qlimit)  # soi_qlimit
    struct.pack_into("<5Ihh", buf, 24 + 184, rcv_cc, rcv_hiwat, 0, 0, 0, 0, 0)  # soi_rcv
    struct.pack_into("<5Ihh", buf, 24 + 208, snd_cc, snd_hiwat, 0, 0, 0, 0, 0)  # soi_snd
    struct.pack_into("<i", buf, 24 + 232, kind)  # soi_kind
    if unix_path is not None or conn_so:
        # un_sockinfo at 264: unsi_conn_so, then unsi_addr (sun_len, sun_family, sun_path).
        path = unix_path or b""
        struct.pack_into("<Q", buf, 264, conn_so)
        struct.pack_into("<BB", buf, 280, 2 + len(path) + (1 if path else 0), AF_UNIX)
        buf[282:282 + len(path)] = path
        return bytes(buf)
    if vflag is None:
        vflag = INI_IPV6 if family == AF_INET6 else INI_IPV4
    # in_sockinfo at 264: ports are network-order u_short in the int's first bytes.
    struct.pack_into(">H", buf, 264, remote[1])
    struct.pack_into(">H", buf, 268, local[1])
    buf[288] = vflag
    for (address, _port), offset in ((remote, 296), (local, 312)):
        if ":" in address:
            buf[offset:offset + 16] = socket.inet_pton(socket.AF_INET6, address)
        else:
            buf[offset:offset + 16] = _in4in6(address)
    struct.pack_into("<i", buf, 344, state)  # tcpsi_state
    struct.pack_into("<i", buf, 364, mss)  # tcpsi_mss
    return bytes(buf)


# --- route messages (section 1) -----------------------------------------------
RTM_VERSION = 5
RTM_NEWADDR, RTM_IFINFO2, RTM_NEWMADDR2 = 0xC, 0x12, 0x13
RTA_DST, RTA_GATEWAY, RTA_NETMASK, RTA_IFP, RTA_IFA, RTA_BRD = 0x1, 0x2, 0x4, 0x10, 0x20, 0x80
IFF_UP, IFF_RUNNING, IFF_LOOPBACK, IFF_MULTICAST = 0x1, 0x40, 0x8, 0x8000
IF_DATA64_FORMAT = "<8B2I12Q2I2i"
IF_DATA64_COUNTERS = (
    "baudrate", "ipackets", "ierrors", "opackets", "oerrors", "collisions",
    "ibytes", "obytes", "imcasts", "omcasts", "iqdrops", "noproto",
)


def roundup32(length: int) -> int:
    return (length + 3) & ~3 if length else 4


def sockaddr_dl(index: int, name: str, lladdr: bytes = b"", ift: int = 6) -> bytes:
    data = name.encode() + lladdr
    length = max(8 + len(data), 20)
    raw = struct.pack("<BBHBBBB", length, 18, index, ift, len(name), len(lladdr), 0)
    return raw + data.ljust(length - 8, b"\0")


def sockaddr_in(address: str) -> bytes:
    return struct.pack("<BBH4s8x", 16, AF_INET, 0, socket.inet_pton(socket.AF_INET, address))


def sockaddr_in6(address: str) -> bytes:
    return struct.pack("<BBHI16sI", 28, AF_INET6, 0, 0, socket.inet_pton(socket.AF_INET6, address), 0)


def zero_length_sockaddr() -> bytes:
    return b"\0"


def _sockaddrs(addrs: dict) -> tuple[int, bytes]:
    """Bitmask and padded sockaddrs, in RTAX order, from {RTA bit: sockaddr}."""
    mask = 0
    body = b""
    for bit in sorted(addrs):
        mask |= bit
        raw = addrs[bit]
        body += raw.ljust(roundup32(raw[0]), b"\0")
    return mask, body


def if_data64(mtu: int = 1500, **counters: int) -> bytes:
    values = [counters.get(name, 0) for name in IF_DATA64_COUNTERS]
    return struct.pack(IF_DATA64_FORMAT, 6, 0, 0, 6, 14, 0, 0, 0, mtu, 0, *values, 0, 0, 1700000000, 0)


def ifinfo2(index: int, addrs: dict, flags: int = IFF_UP | IFF_RUNNING, snd_drops: int = 0,
            mtu: int = 1500, **counters: int) -> bytes:
    """RTM_IFINFO2: if_msghdr2 (160 bytes) + sockaddrs; counters by if_data64 name."""
    mask, body = _sockaddrs(addrs)
    header = struct.pack("<HBBiiH2x4i", 160 + len(body), RTM_VERSION, RTM_IFINFO2,
                         mask, flags, index, 0, 50, snd_drops, 0)
    return header + if_data64(mtu, **counters) + body


def newaddr(index: int, addrs: dict) -> bytes:
    mask, body = _sockaddrs(addrs)
    return struct.pack("<HBBiiH2xi", 20 + len(body), RTM_VERSION, RTM_NEWADDR, mask, 0, index, 0) + body


def newmaddr2(index: int, addrs: dict) -> bytes:
    mask, body = _sockaddrs(addrs)
    return struct.pack("<HBBiiH2xi", 20 + len(body), RTM_VERSION, RTM_NEWMADDR2, mask, 0, index, 1) + body


# --- IFMIB (section 2) ----------------------------------------------------------


def ifmibdata(name: str, flags: int = IFF_UP, snd_drops: int = 0, mtu: int = 1500, **counters) -> bytes:
    head = struct.pack("<16s5I4I", name.encode(), 1, flags, 0, 50, snd_drops, 0, 0, 0, 0)
    return head + if_data64(mtu, **counters)
