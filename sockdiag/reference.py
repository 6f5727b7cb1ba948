"""Pure-Python reference of send_buffer and tcp_info (Linux).

Built only on fcntl.ioctl, socket.getsockopt and struct: the oracle the tests
hold the Cython path to, and the baseline the benchmarks measure it against.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from ._common import TCP_CA_STATES, SendBuffer, TcpInfo, tcp_state_name

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
