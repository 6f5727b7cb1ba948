"""macOS decoders fed synthetic kernel buffers built from the reference layouts."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from testsupport import darwin_buffers as mk
from sockdiag import decode
from sockdiag._common import SendBuffer

GIB4 = 1 << 32


# --- private tcp_info -----------------------------------------------------------


def _common_values():
    return dict(
        tcpi_state=4, tcpi_options=0x7, tcpi_snd_wscale=6, tcpi_rcv_wscale=7, tcpi_rto=204,
        tcpi_snd_mss=16344, tcpi_rcv_mss=16344, tcpi_srtt=3, tcpi_rttvar=2, tcpi_rttbest=1,
        tcpi_snd_ssthresh=1 << 30, tcpi_snd_cwnd=180000, tcpi_rcv_space=400000,
        tcpi_snd_wnd=399000, tcpi_snd_sbbytes=700000, tcpi_txpackets=5 * GIB4,
        tcpi_txbytes=7 * GIB4 + 5, tcpi_txretransmitbytes=1234, tcpi_txunacked=250000,
        tcpi_rxpackets=99, tcpi_rxbytes=12345, tcpi_rxduplicatebytes=11,
        tcpi_rxoutoforderbytes=22, tcpi_snd_bw=8_000_000, tcpi_rcvoopack=3,
        tcpi_dsack_recvd=4, tcpi_txretransmitpackets=5, tcpi_last_outif=1,
    )


@pytest.mark.parametrize("size", mk.TCP_INFO_SIZES)
def test_tcp_info_each_historical_size(size):
    values = _common_values()
    if size >= 296:
        values["tcpi_rcv_srtt"] = 9
    info = decode.tcp_info_darwin(mk.tcp_info(size, **values))
    assert info.state == "ESTABLISHED"
    assert (info.options, info.snd_wscale, info.rcv_wscale) == (7, 6, 7)
    assert info.rto_us == 204_000
    assert info.snd_mss == 16344
    # tcpi_rcv_mss holds the send MSS and tcpi_rttbest is no RTT sample: not Linux's meaning.
    assert info.rcv_mss is None and info.min_rtt_us is None
    assert (info.rtt_us, info.rttvar_us) == (3000, 2000)
    assert (info.snd_ssthresh_bytes, info.snd_cwnd_bytes) == (1 << 30, 180000)
    assert (info.rcv_wnd, info.snd_wnd) == (400000, 399000)
    assert info.send_buffer_bytes == 700000
    assert info.unacked_bytes == 250000
    assert info.segs_out == 5 * GIB4
    assert info.bytes_sent == 7 * GIB4 + 5
    assert (info.bytes_retrans, info.segs_in, info.bytes_received) == (1234, 99, 12345)
    assert (info.rx_duplicate_bytes, info.rx_out_of_order_bytes) == (11, 22)
    assert info.snd_bw_bps == 8_000_000
    assert (info.rcv_ooopack, info.dsack_dups, info.retransmitted_segs) == (3, 4, 5)
    assert info.bytes_acked == 7 * GIB4 + 5 - 1234 - 250000  # derived
    assert info.rcv_rtt_us == (9000 if size >= 296 else None)
    # Linux-only fields stay None.
    assert info.snd_cwnd_segs is None and info.notsent_bytes is None and info.ca_state is None


def test_tcp_info_tail_only_from_the_408_byte_layout():
    tail = dict(tcpi_received_ce_packets=3, tcpi_received_ect0_bytes=100, tcpi_received_ect1_bytes=200,
                tcpi_received_ce_bytes=300, tcpi_delivered_ect0_bytes=400,
                tcpi_delivered_ect1_bytes=500, tcpi_delivered_ce_bytes=600)
    info = decode.tcp_info_darwin(mk.tcp_info(408, **tail))
    assert (info.received_ce, info.received_e0_bytes, info.received_e1_bytes, info.received_ce_bytes,
            info.delivered_e0_bytes, info.delivered_e1_bytes, info.delivered_ce_bytes) == (
        3, 100, 200, 300, 400, 500, 600)
    # The 352-byte layout has two timers at 336/344: not ECN counters.
    info = decode.tcp_info_darwin(mk.tcp_info(352, tcpi_flow_control_total_time=77,
                                              tcpi_rcvwnd_limited_total_time=88))
    assert info.received_ce is None and info.received_e0_bytes is None
    # An unknown, longer layout: the tail's place is unknown, so not read.
    info = decode.tcp_info_darwin(mk.tcp_info(408, **tail) + bytes(16))
    assert info.received_ce is None and info.delivered_ce_bytes is None
    assert info.state == "CLOSE"


def test_tcp_info_accecn_counters_wrapped_without_accecn_are_none():
    # Without AccECN the kernel subtracts 5 from a u32 zero and 1 from u64 zeros.
    info = decode.tcp_info_darwin(mk.tcp_info(
        408, tcpi_received_ce_packets=(0 - 5) % GIB4, tcpi_received_ect0_bytes=2**64 - 1,
        tcpi_delivered_ect1_bytes=2**64 - 1))
    assert info.received_ce is None and info.received_e0_bytes is None
    assert info.delivered_e1_bytes is None
    assert info.received_ce_bytes == 0


def test_tcp_info_bytes_acked_derived_never_negative():
    info = decode.tcp_info_darwin(mk.tcp_info(292, tcpi_txbytes=100, tcpi_txretransmitbytes=60,
                                              tcpi_txunacked=50))
    assert info.bytes_acked == 0
    assert decode.tcp_info_darwin(mk.tcp_info(292)[:99]).bytes_acked is None  # no txunacked


def test_tcp_info_rto_zero_means_no_timer():
    assert decode.tcp_info_darwin(mk.tcp_info(292, tcpi_rto=0)).rto_us is None


def test_tcp_info_short_buffers():
    with pytest.raises(ValueError):
        decode.tcp_info_darwin(b"\x04" * 7)
    # A prefix: fields that do not fit whole are None.
    info = decode.tcp_info_darwin(mk.tcp_info(292, tcpi_snd_mss=1448, tcpi_srtt=5)[:26])
    assert info.snd_mss == 1448 and info.rtt_us is None and info.bytes_sent is None


@pytest.mark.parametrize("number,name", [(0, "CLOSE"), (1, "LISTEN"), (4, "ESTABLISHED"),
                                         (5, "CLOSE_WAIT"), (9, "FIN_WAIT2"), (10, "TIME_WAIT"),
                                         (11, "UNKNOWN(11)")])
def test_darwin_state_names(number, name):
    assert decode.tcp_info_darwin(mk.tcp_info(292, tcpi_state=number)).state == name


# --- the send-buffer split: one private tcp_info -----------------------------------


def _reference_split(buf: bytes, sndbuf: int) -> tuple[int, int, int, int]:
    """(size, unacked, unsent, free) from the reference's offsets, independent of sockdiag."""
    (queued,) = struct.unpack_from("<I", buf, mk.TCP_INFO_LAYOUT["tcpi_snd_sbbytes"][1])
    (txunacked,) = struct.unpack_from("<Q", buf, mk.TCP_INFO_LAYOUT["tcpi_txunacked"][1])
    unacked = min(txunacked, queued)
    return sndbuf, unacked, queued - unacked, max(sndbuf - queued, 0)


def test_send_buffer_split_from_one_tcp_info():
    # sb_cc and txunacked of the same struct: the split is one moment.
    buf = mk.tcp_info(408, tcpi_snd_sbbytes=700_000, tcpi_txunacked=250_000)
    split = decode.send_buffer_darwin(buf, 1_048_576)
    assert (split.size, split.unacked, split.unsent, split.free) == (1_048_576, 250_000, 450_000, 348_576)
    assert split.inflight == 700_000  # what SO_NWRITE reports for the same moment


@pytest.mark.parametrize("size", mk.TCP_INFO_SIZES)
def test_send_buffer_split_every_layout(size):
    buf = mk.tcp_info(size, tcpi_snd_sbbytes=5000, tcpi_txunacked=1448)
    assert decode.send_buffer_darwin(buf, 4096) == SendBuffer(size=4096, unacked=1448, unsent=3552, free=0)


def test_send_buffer_split_syn_fin_counted_in_unacked():
    # txunacked = snd_max - snd_una counts the FIN; the buffer holds no byte for it.
    buf = mk.tcp_info(292, tcpi_state=6, tcpi_snd_sbbytes=0, tcpi_txunacked=1)
    assert decode.send_buffer_darwin(buf, 8192) == SendBuffer(size=8192, unacked=0, unsent=0, free=8192)


def test_send_buffer_split_refused():
    with pytest.raises(ValueError, match="listening"):
        decode.send_buffer_darwin(mk.tcp_info(292, tcpi_state=1), 8192)
    with pytest.raises(ValueError, match="shorter than 100"):
        decode.send_buffer_darwin(mk.tcp_info(292)[:99], 8192)
    with pytest.raises(ValueError):
        decode.send_buffer_darwin(b"", 8192)


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from(mk.TCP_INFO_SIZES), sndbuf=st.integers(0, 2**31 - 1), data=st.data())
def test_send_buffer_split_against_the_reference(size, sndbuf, data):
    buf = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
    buf[0] = 4  # ESTABLISHED
    split = decode.send_buffer_darwin(bytes(buf), sndbuf)
    assert (split.size, split.unacked, split.unsent, split.free) == _reference_split(bytes(buf), sndbuf)


# --- the ABI table the audit compiles ------------------------------------------------


def test_abi_table_agrees_with_the_reference_layouts():
    # DARWIN_ABI is what .github/macos/audit.py checks against Apple's headers;
    # here its tcp_info offsets meet the reference's, retyped in darwin_buffers.
    layout = dict(mk.TCP_INFO_LAYOUT, **mk.TCP_INFO_TAIL[408])
    offsets = {}
    for check in decode.DARWIN_ABI:
        if check.expression.startswith("offsetof(struct tcp_info, "):
            offsets[check.expression[len("offsetof(struct tcp_info, "):-1]] = check.value
    assert offsets and all(layout[member][1] == offset for member, offset in offsets.items())
    sizes = {check.expression: check.value for check in decode.DARWIN_ABI}
    assert sizes["sizeof(struct socket_fdinfo)"] == 792 and sizes["sizeof(struct ifmibdata)"] == 180
    assert sizes["offsetof(struct if_data64, ifi_ibytes)"] == 64
    assert sizes["offsetof(struct if_data64, ifi_lastchange.tv_usec)"] == 124
    assert sizes["offsetof(struct socket_fdinfo, psi.soi_proto.pri_tcp.tcpsi_ini.insi_vflag)"] == 288
    assert sizes["TSI_S__CLOSE_WAIT"] == sizes["TCPS_CLOSE_WAIT"] == 5


# --- public tcp_connection_info ---------------------------------------------------


def _connection_values():
    return dict(tcpi_state=4, tcpi_snd_wscale=5, tcpi_rcv_wscale=6, tcpi_options=0xF, tcpi_rto=250,
                tcpi_maxseg=1448, tcpi_snd_ssthresh=65535, tcpi_snd_cwnd=14480, tcpi_snd_wnd=131072,
                tcpi_snd_sbbytes=9000, tcpi_rcv_wnd=131000, tcpi_rttcur=4, tcpi_srtt=6, tcpi_rttvar=3,
                tfo_bits=0x7FFF, tcpi_txpackets=10, tcpi_txbytes=5 * GIB4, tcpi_txretransmitbytes=7,
                tcpi_rxpackets=11, tcpi_rxbytes=6 * GIB4, tcpi_rxoutoforderbytes=8,
                tcpi_txretransmitpackets=2)


def test_tcp_connection_info_112():
    info = decode.tcp_connection_info_darwin(mk.tcp_connection_info(**_connection_values()))
    assert info.state == "ESTABLISHED"
    assert (info.snd_wscale, info.rcv_wscale, info.options) == (5, 6, 0xF)
    assert (info.rto_us, info.snd_mss) == (250_000, 1448)
    assert (info.snd_ssthresh_bytes, info.snd_cwnd_bytes, info.snd_wnd) == (65535, 14480, 131072)
    assert (info.send_buffer_bytes, info.rcv_wnd) == (9000, 131000)
    assert (info.rtt_us, info.rttvar_us) == (6000, 3000)
    assert (info.segs_out, info.bytes_sent, info.bytes_retrans) == (10, 5 * GIB4, 7)
    assert (info.segs_in, info.bytes_received, info.rx_out_of_order_bytes) == (11, 6 * GIB4, 8)
    assert info.retransmitted_segs == 2
    assert info.unacked_bytes is None  # only the private struct has it


def test_tcp_connection_info_104_before_macos_10_13():
    info = decode.tcp_connection_info_darwin(mk.tcp_connection_info(104, **_connection_values()))
    assert info.rx_out_of_order_bytes == 8 and info.retransmitted_segs is None


def test_tcp_connection_info_short():
    with pytest.raises(ValueError):
        decode.tcp_connection_info_darwin(b"\0" * 4)


def test_merge_public_wins_private_fills_in():
    private = decode.tcp_info_darwin(mk.tcp_info(408, tcpi_srtt=99, tcpi_txunacked=500,
                                                 tcpi_rttbest=2, tcpi_snd_bw=1000, tcpi_state=4))
    public = decode.tcp_connection_info_darwin(mk.tcp_connection_info(tcpi_srtt=7, tcpi_state=4))
    merged = decode.merge_tcp_info_darwin(private, public)
    assert merged.rtt_us == 7000  # public
    assert merged.unacked_bytes == 500 and merged.snd_bw_bps == 1000 and merged.min_rtt_us is None
    assert decode.merge_tcp_info_darwin(None, public) == public
    assert decode.merge_tcp_info_darwin(private, None) == private
    with pytest.raises(ValueError):
        decode.merge_tcp_info_darwin(None, None)


# --- libproc ---------------------------------------------------------------------


def test_fd_list_types():
    buf = mk.fd_list([(0, 1), (3, 2), (4, 9), (5, 10), (6, 11), (7, 8), (8, 6), (9, 5)])
    assert decode.proc_fdlist_darwin(buf) == [
        (0, "vnode"), (3, "socket"), (4, "netpolicy"), (5, "channel"), (6, "nexus"),
        (7, "unknown(8)"), (8, "pipe"), (9, "kqueue")]
    assert decode.proc_fdlist_darwin(b"") == []


@pytest.mark.parametrize("buf", [b"\0" * 7, b"\0" * 12, struct.pack("<iI", -1, 2)])
def test_fd_list_bad(buf):
    with pytest.raises(ValueError):
        decode.proc_fdlist_darwin(buf)


def test_socket_fdinfo_ipv4():
    buf = mk.socket_fdinfo(local=("10.1.2.3", 443), remote=("192.168.0.9", 51234),
                           snd_cc=300000, snd_hiwat=524288, rcv_cc=17, state=4, mss=1448)
    info = decode.socket_fdinfo_darwin(buf, fd=7)
    assert (info.fd, info.family, info.inode) == (7, "IPv4", 0xFFFFFF80_12345678)  # soi_so
    assert (info.local, info.remote) == ("10.1.2.3:443", "192.168.0.9:51234")
    assert info.state == "ESTABLISHED"
    assert (info.send_queue, info.sndbuf, info.free, info.recv_queue) == (300000, 524288, 224288, 17)
    assert info.unacked is None and info.unsent is None and info.queue_delay_s is None
    assert info.tcp is None  # tcp_info needs the socket itself


def test_socket_fdinfo_ipv6_and_mapped():
    buf = mk.socket_fdinfo(family=mk.AF_INET6, local=("2001:db8::1", 8080), remote=("fe80::2", 1),
                           state=9)
    info = decode.socket_fdinfo_darwin(buf)
    assert info.family == "IPv6" and info.local == "[2001:db8::1]:8080"
    assert info.remote == "[fe80::2]:1" and info.state == "FIN_WAIT2"
    # An IPv6 socket connected to an IPv4-mapped peer: insi_vflag says IPv4 only.
    buf = mk.socket_fdinfo(family=mk.AF_INET6, vflag=mk.INI_IPV4, local=("127.0.0.1", 5),
                           remote=("127.0.0.1", 6))
    info = decode.socket_fdinfo_darwin(buf)
    assert (info.family, info.local, info.remote) == ("IPv4", "127.0.0.1:5", "127.0.0.1:6")


def test_socket_fdinfo_dual_stack_is_ipv6():
    # Bound to [::] without IPV6_V6ONLY: both INI_IPV4 and INI_IPV6 are set.
    buf = mk.socket_fdinfo(family=mk.AF_INET6, vflag=mk.INI_IPV4 | mk.INI_IPV6, state=1,
                           local=("::", 8080), remote=("::", 0))
    info = decode.socket_fdinfo_darwin(buf)
    assert (info.family, info.local, info.remote, info.state) == ("IPv6", "[::]:8080", "[::]:0", "LISTEN")
    # Not the IPv4 reading of the same bytes (the last 4 of ::, "0.0.0.0").
    buf = mk.socket_fdinfo(family=mk.AF_INET6, vflag=mk.INI_IPV4 | mk.INI_IPV6,
                           local=("2001:db8::7", 443), remote=("2001:db8::8", 50000))
    assert decode.socket_fdinfo_darwin(buf).local == "[2001:db8::7]:443"


def test_socket_fdinfo_listening():
    # As on Linux: no send queue, and the receive queue is the accept queue.
    info = decode.socket_fdinfo_darwin(mk.socket_fdinfo(state=1, qlen=3, rcv_cc=0, snd_hiwat=8192,
                                                        local=("0.0.0.0", 8080)))
    assert (info.state, info.send_queue, info.recv_queue, info.local) == ("LISTEN", None, 3, "0.0.0.0:8080")


def test_socket_fdinfo_free_never_negative():
    # sb_cc may exceed sb_hiwat (the buffer shrank, or a last write overshot).
    info = decode.socket_fdinfo_darwin(mk.socket_fdinfo(snd_cc=9000, snd_hiwat=8192))
    assert info.free == 0 and info.send_queue == 9000


@pytest.mark.parametrize("family,kind", [(mk.AF_UNIX, mk.SOCKINFO_UN), (mk.AF_INET, mk.SOCKINFO_IN),
                                         (mk.AF_INET6, 0), (17, mk.SOCKINFO_TCP)])
def test_socket_fdinfo_not_tcp_is_none(family, kind):
    assert decode.socket_fdinfo_darwin(mk.socket_fdinfo(family=family, kind=kind)) is None


def test_socket_fdinfo_short():
    with pytest.raises(ValueError):
        decode.socket_fdinfo_darwin(mk.socket_fdinfo()[:791])


# --- NET_RT_IFLIST2 -------------------------------------------------------------------


def _iflist2_bytes(true_value: int) -> int:
    """What IFLIST2 gives unsigned programs: mod 2**32, rounded down to 1 KiB."""
    return (true_value % GIB4) // 1024 * 1024


def _dump():
    """lo0 and en0 with addresses and multicast records, as the kernel orders them."""
    return b"".join([
        mk.ifinfo2(1, {mk.RTA_IFP: mk.sockaddr_dl(1, "lo0", ift=0x18)},
                   flags=mk.IFF_UP | mk.IFF_LOOPBACK | mk.IFF_RUNNING | mk.IFF_MULTICAST,
                   mtu=16384, ibytes=_iflist2_bytes(5 * GIB4 + 3000), obytes=1024,
                   ipackets=10, opackets=11, ierrors=1, oerrors=2, iqdrops=3, snd_drops=4),
        mk.newaddr(1, {mk.RTA_NETMASK: mk.sockaddr_in("255.0.0.0"), mk.RTA_IFA: mk.sockaddr_in("127.0.0.1")}),
        mk.newaddr(1, {mk.RTA_NETMASK: mk.sockaddr_in6("ffff:ffff:ffff:ffff::"),
                       mk.RTA_IFA: mk.sockaddr_in6("::1")}),
        mk.newmaddr2(1, {mk.RTA_IFP: mk.sockaddr_dl(1, "lo0"), mk.RTA_IFA: mk.sockaddr_in("224.0.0.1")}),
        mk.ifinfo2(4, {mk.RTA_IFP: mk.sockaddr_dl(4, "en0", b"\xaa\xbb\xcc\xdd\xee\xff")},
                   flags=mk.IFF_UP | mk.IFF_RUNNING, ibytes=2048, obytes=4096, ipackets=20, opackets=21),
        mk.newaddr(4, {mk.RTA_NETMASK: mk.sockaddr_in("255.255.255.0"), mk.RTA_IFA: mk.sockaddr_in("192.168.1.5"),
                       mk.RTA_BRD: mk.sockaddr_in("192.168.1.255")}),
        mk.newmaddr2(4, {mk.RTA_GATEWAY: mk.sockaddr_dl(4, "", b"\x01\x00\x5e\x00\x00\x01"),
                         mk.RTA_IFP: mk.sockaddr_dl(4, "en0"), mk.RTA_IFA: mk.sockaddr_in("224.0.0.1")}),
        mk.ifinfo2(7, {mk.RTA_IFP: mk.sockaddr_dl(7, "utun0", ift=0xff)}, flags=0, mtu=1380),
    ])


def test_iflist2_several_interfaces():
    result = decode.iflist2_darwin(_dump())
    assert list(result) == ["lo0", "en0", "utun0"]
    lo = result["lo0"]
    assert (lo.index, lo.is_up, lo.mtu) == (1, True, 16384)
    assert (lo.rx_bytes, lo.tx_bytes) == (2048, 1024)  # as the kernel gave them
    assert (lo.rx_packets, lo.tx_packets, lo.rx_errors, lo.tx_errors) == (10, 11, 1, 2)
    assert (lo.rx_drops, lo.tx_drops) == (3, 4)
    en = result["en0"]
    assert (en.index, en.is_up, en.rx_bytes, en.tx_bytes, en.rx_packets, en.tx_packets) == (
        4, True, 2048, 4096, 20, 21)
    assert (result["utun0"].is_up, result["utun0"].mtu, result["utun0"].index) == (False, 1380, 7)


def test_iflist2_stale_gateway_before_link_address():
    # The kernel reuses its rt_addrinfo: a multicast gateway of the previous
    # interface can ride along in the next RTM_IFINFO2, before RTA_IFP.
    dump = (
        mk.ifinfo2(2, {mk.RTA_IFP: mk.sockaddr_dl(2, "en1")})
        + mk.newmaddr2(2, {mk.RTA_GATEWAY: mk.sockaddr_dl(2, "", b"\x33\x33\x00\x00\x00\x01"),
                           mk.RTA_IFP: mk.sockaddr_dl(2, "en1"), mk.RTA_IFA: mk.sockaddr_in6("ff02::1")})
        + mk.ifinfo2(3, {mk.RTA_GATEWAY: mk.sockaddr_dl(2, "", b"\x33\x33\x00\x00\x00\x01"),
                         mk.RTA_IFP: mk.sockaddr_dl(3, "bridge0")}, ibytes=77)
    )
    result = decode.iflist2_darwin(dump)
    assert list(result) == ["en1", "bridge0"]
    assert result["bridge0"].index == 3 and result["bridge0"].rx_bytes == 77


def test_iflist2_zero_length_sockaddrs_take_four_bytes():
    dump = (
        mk.ifinfo2(5, {mk.RTA_DST: mk.zero_length_sockaddr(), mk.RTA_GATEWAY: mk.zero_length_sockaddr(),
                       mk.RTA_IFP: mk.sockaddr_dl(5, "gif0")})
        + mk.newaddr(5, {mk.RTA_NETMASK: mk.zero_length_sockaddr(), mk.RTA_IFA: mk.sockaddr_in("10.0.0.1")})
        + mk.ifinfo2(6, {mk.RTA_IFP: mk.sockaddr_dl(6, "stf0")})
    )
    assert list(decode.iflist2_darwin(dump)) == ["gif0", "stf0"]


def test_iflist2_truncated_last_message():
    dump = _dump()
    for cut in (1, 3, 4, 100):
        with pytest.raises(ValueError):
            decode.iflist2_darwin(dump[:-cut])


def test_iflist2_empty():
    assert decode.iflist2_darwin(b"") == {}


def _patch(buf: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


@pytest.mark.parametrize("offset,fmt,value", [
    (0, "<H", 0),  # msglen 0 must not loop forever
    (0, "<H", 2),  # shorter than its own prefix
    (0, "<H", 162),  # not a multiple of 4
    (0, "<H", 156),  # RTM_IFINFO2 shorter than if_msghdr2
    (0, "<H", 60000),  # past the end
    (2, "<B", 4),  # RTM version
    (4, "<I", 0),  # no RTA_IFP
    (4, "<I", 0x110),  # a bit past RTAX_MAX
    (161, "<B", 2),  # RTA_IFP is not AF_LINK
    (165, "<B", 30),  # name longer than the sockaddr
    (165, "<B", 0),  # empty name
    (160, "<B", 4),  # sockaddr_dl too short for its header
    (160, "<B", 200),  # sockaddr runs past the message
    (168, "<B", 0xE9),  # non-ASCII name
])
def test_iflist2_malformed(offset, fmt, value):
    with pytest.raises(ValueError):
        decode.iflist2_darwin(_patch(_dump(), offset, fmt, value))


def test_iflist2_duplicate_name():
    one = mk.ifinfo2(1, {mk.RTA_IFP: mk.sockaddr_dl(1, "en0")})
    with pytest.raises(ValueError):
        decode.iflist2_darwin(one + one)


def test_iflist2_unknown_message_types_are_stepped_over():
    other = struct.pack("<HBB", 8, mk.RTM_VERSION, 0x7F) + bytes(4)
    assert list(decode.iflist2_darwin(other + _dump())) == ["lo0", "en0", "utun0"]


# --- IFMIB --------------------------------------------------------------------------------


def test_ifmibdata_exact_counters_past_4_gib():
    buf = mk.ifmibdata("en0", flags=mk.IFF_UP | mk.IFF_RUNNING, snd_drops=9, mtu=9000,
                       ibytes=5 * GIB4 + 123, obytes=(1 << 63) + 7, ipackets=GIB4 + 1, opackets=2,
                       ierrors=3, oerrors=4, iqdrops=5)
    info = decode.ifmibdata_darwin(buf, index=4)
    assert (info.name, info.index, info.is_up, info.mtu) == ("en0", 4, True, 9000)
    assert (info.rx_bytes, info.tx_bytes) == (5 * GIB4 + 123, (1 << 63) + 7)
    assert (info.rx_packets, info.tx_packets, info.rx_errors, info.tx_errors) == (GIB4 + 1, 2, 3, 4)
    assert (info.rx_drops, info.tx_drops) == (5, 9)
    assert decode.ifmibdata_darwin(mk.ifmibdata("lo0", flags=0)).is_up is False


def test_ifmibdata_detached_slot_is_none():
    assert decode.ifmibdata_darwin(bytes(180), index=3) is None


@pytest.mark.parametrize("buf", [bytes(179), bytes(181), b"en0".ljust(16, b"x") + bytes(164),
                                 b"\xe9n0\0".ljust(180, b"\0")])
def test_ifmibdata_bad(buf):
    with pytest.raises(ValueError):
        decode.ifmibdata_darwin(buf)


# --- hostile input: only ValueError, never anything else, never a hang ------------------------

DECODERS = [
    decode.tcp_info_darwin,
    decode.tcp_connection_info_darwin,
    decode.proc_fdlist_darwin,
    decode.socket_fdinfo_darwin,
    decode.iflist2_darwin,
    decode.ifmibdata_darwin,
]


@pytest.mark.parametrize("decoder", DECODERS, ids=lambda d: d.__name__)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=1024))
def test_garbage_raises_only_value_error(decoder, data):
    try:
        decoder(data)
    except ValueError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=8))
def test_iflist2_mutated_dump(mutations):
    buf = bytearray(_dump())
    for offset, value in mutations:
        buf[offset % len(buf)] = value
    try:
        decode.iflist2_darwin(bytes(buf))
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 791), st.integers(0, 255)), max_size=8))
def test_socket_fdinfo_mutated(mutations):
    buf = bytearray(mk.socket_fdinfo(family=mk.AF_INET6))
    for offset, value in mutations:
        buf[offset] = value
    try:
        decode.socket_fdinfo_darwin(bytes(buf))
    except ValueError:
        pass


@settings(max_examples=200, deadline=None)
@given(size=st.sampled_from(mk.TCP_INFO_SIZES), data=st.data())
def test_tcp_info_random_values_of_each_size(size, data):
    buf = data.draw(st.binary(min_size=size, max_size=size))
    info = decode.tcp_info_darwin(buf)
    assert info.bytes_sent == struct.unpack_from("<Q", buf, 76)[0]
    assert info.unacked_bytes == struct.unpack_from("<Q", buf, 92)[0]


# --- UDP and UNIX sockets from proc_pidfdinfo -----------------------------------


def test_socket_fdinfo_udp():
    info = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        kind=mk.SOCKINFO_IN, sotype=2, protocol=17, local=("10.0.0.1", 5353), remote=("0.0.0.0", 0),
        rcv_cc=4096, rcv_hiwat=786896, snd_cc=12, snd_hiwat=9216), fd=4)
    assert (info.kind, info.socket_type, info.family, info.local, info.state) == (
        "udp", "dgram", "IPv4", "10.0.0.1:5353", "CLOSE")
    assert (info.recv_queue, info.send_queue, info.rcvbuf, info.sndbuf, info.free) == (
        4096, 12, 786896, 9216, 9204)
    assert info.drops is None and info.tcp is None and info.unacked is None and info.backlog_limit is None
    connected = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        family=mk.AF_INET6, kind=mk.SOCKINFO_IN, sotype=2, protocol=17, local=("::1", 4000),
        remote=("::1", 53)))
    assert (connected.family, connected.remote, connected.state) == ("IPv6", "[::1]:53", "ESTABLISHED")


def test_socket_fdinfo_unix_stream_datagram_and_listener():
    stream = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        family=mk.AF_UNIX, kind=mk.SOCKINFO_UN, sotype=1, soi_state=0x2, rcv_cc=50000, rcv_hiwat=8192,
        snd_hiwat=8192, so=0x11, conn_so=0x22, unix_path=b""), fd=6)
    assert (stream.kind, stream.socket_type, stream.family, stream.state) == ("unix", "stream", "UNIX", "ESTABLISHED")
    assert (stream.recv_queue, stream.send_queue, stream.inode, stream.peer_inode) == (50000, 0, 0x11, 0x22)
    assert stream.local_address is None and stream.local_port is None and stream.drops is None
    named = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        family=mk.AF_UNIX, kind=mk.SOCKINFO_UN, sotype=2, unix_path=b"/var/run/sd-\xff.sock"))
    assert (named.socket_type, named.state, named.local) == ("dgram", "CLOSE", "/var/run/sd-\\xff.sock")
    assert named.peer_inode is None
    listener = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        family=mk.AF_UNIX, kind=mk.SOCKINFO_UN, sotype=1, options=0x2, qlen=3, qlimit=128,
        rcv_cc=999, unix_path=b"/tmp/php-fpm.sock"))
    assert (listener.state, listener.recv_queue, listener.backlog_limit, listener.send_queue, listener.free) == (
        "LISTEN", 3, 128, None, None)
    seqpacket = decode.socket_fdinfo_darwin(mk.socket_fdinfo(
        family=mk.AF_UNIX, kind=mk.SOCKINFO_UN, sotype=5, unix_path=b""))
    assert seqpacket.socket_type == "seqpacket"


def test_socket_fdinfo_unix_path_is_cut_at_sun_len_and_its_nul():
    buf = bytearray(mk.socket_fdinfo(family=mk.AF_UNIX, kind=mk.SOCKINFO_UN, sotype=1, unix_path=b"/a"))
    buf[280] = 255  # a sun_len past sun_path: the path stops at 104 bytes or its NUL
    buf[282:282 + 104] = b"x" * 104
    assert decode.socket_fdinfo_darwin(bytes(buf)).local_address == "x" * 104
