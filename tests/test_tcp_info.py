"""tcp_info and the Linux tcp_info decoder, against the reference and ss."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sockdiag
from sockdiag import _fast, decode, reference
from sockdiag._common import TCP_INFO_FIELDS

from conftest import fill, requires_linux, requires_ss, wait_until
from testsupport.loopback import ss_filter

TCP_INFO = 11
# Fields that move between two reads of an idle connection.
VOLATILE = {"last_data_sent_ms", "last_ack_sent_ms", "last_data_recv_ms", "last_ack_recv_ms", "busy_time_us",
            "rwnd_limited_us", "sndbuf_limited_us", "rcv_rtt_us", "rcv_space", "rcv_ssthresh"}


def stable(info):
    return {k: v for k, v in info.asdict().items() if k not in VOLATILE}


@requires_linux
def test_established_connection(tcp_pair):
    client, server = tcp_pair
    info = sockdiag.tcp_info(client)
    assert info.state == "ESTABLISHED"
    assert info.ca_state == "Open"
    assert info.snd_mss > 0 and info.rtt_us > 0
    assert info.notsent_bytes == 0
    # This kernel returns the whole 280-byte struct: nothing is left as None
    # but the macOS-only fields.
    kernel_length = len(client.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 512))
    missing = [name for name, value in info.asdict().items() if value is None]
    if kernel_length >= 280:
        assert set(missing) <= {"max_pacing_rate_bps", "snd_cwnd_bytes", "snd_ssthresh_bytes", "send_buffer_bytes",
                                "unacked_bytes", "snd_bw_bps", "rx_duplicate_bytes", "rx_out_of_order_bytes",
                                "retransmitted_segs"}


@requires_linux
def test_listening_socket_reports_listen():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert sockdiag.tcp_info(listener).state == "LISTEN"


@requires_linux
def test_notsent_bytes_is_the_unsent_split(tcp_pair):
    client, _ = tcp_pair
    fill(client)
    wait_until(lambda: sockdiag.tcp_info(client).notsent_bytes == sockdiag.send_buffer(client).unsent)
    assert sockdiag.tcp_info(client).notsent_bytes > 0


@requires_linux
def test_bytes_counters_follow_the_traffic(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"x" * 100_000)
    got = 0
    while got < 100_000:
        got += len(server.recv(65536))
    info = wait_until(lambda: (i := sockdiag.tcp_info(client)).bytes_acked >= 100_000 and i)
    assert info.bytes_sent >= 100_000
    assert sockdiag.tcp_info(server).bytes_received == 100_000


@requires_linux
def test_cython_and_reference_agree_on_a_live_socket(tcp_pair):
    client, _ = tcp_pair
    fill(client)
    wait_until(lambda: stable(sockdiag.tcp_info(client)) == stable(reference.tcp_info(client)))


@requires_linux
@requires_ss
def test_matches_ss(tcp_pair):
    client, _ = tcp_pair
    fill(client)

    def agrees():
        # rto and mss can move between two reads: retry until one pair agrees.
        out = subprocess.run(["ss", "-tiHn", "state", "established", *ss_filter(client)],
                             capture_output=True, text=True, check=True).stdout
        info = sockdiag.tcp_info(client)
        snd, rcv = map(int, re.search(r"wscale:(\d+),(\d+)", out).groups())
        return ((info.snd_wscale, info.rcv_wscale) == (snd, rcv)
                and info.snd_mss == int(re.search(r" mss:(\d+)", out).group(1))
                and info.advmss == int(re.search(r"advmss:(\d+)", out).group(1))
                and info.pmtu == int(re.search(r"pmtu:(\d+)", out).group(1))
                and info.rto_us == int(re.search(r"rto:(\d+)", out).group(1)) * 1000
                and info.notsent_bytes == int(re.search(r"notsent:(\d+)", out).group(1)))

    wait_until(agrees)


@requires_linux
def test_non_tcp_socket_is_refused():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(sockdiag.UnsuitableSocket, match="not a TCP socket"):
            sockdiag.tcp_info(udp)


@requires_linux
def test_closed_socket_is_refused():
    sock = socket.socket()
    sock.close()
    with pytest.raises(sockdiag.UnsuitableSocket, match="closed"):
        sockdiag.tcp_info(sock)


# --- the decoder, offline ---------------------------------------------------


@pytest.fixture(scope="module")
def live_buffer():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            client.sendall(b"hello")
            return client.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 512)


@requires_linux
def test_every_length_decodes_like_the_reference(live_buffer):
    for length in range(8, len(live_buffer) + 1):
        assert decode.tcp_info_linux(live_buffer[:length]) == reference.tcp_info_linux(live_buffer[:length])


@requires_linux
def test_older_kernels_leave_newer_fields_none(live_buffer):
    # Linux 4.6 to 4.8 returned 160 bytes (up to tcpi_data_segs_out).
    info = decode.tcp_info_linux(live_buffer[:160])
    assert info.data_segs_out is not None
    assert info.delivery_rate_bps is None and info.bytes_sent is None and info.snd_wnd is None


@requires_linux
def test_longer_than_known_is_accepted(live_buffer):
    # Padded to the newest known layout first: an older kernel's buffer is shorter.
    known_length = max(offset + size for _name, offset, size in _fast.linux_tcp_info_fields())
    newest = live_buffer.ljust(known_length, b"\0")
    assert decode.tcp_info_linux(newest + b"\xff" * 64) == decode.tcp_info_linux(newest)


@pytest.mark.parametrize("length", [0, 1, 7])
def test_too_short_is_a_value_error(length):
    with pytest.raises(ValueError):
        decode.tcp_info_linux(b"\0" * length)


def test_bit_fields_are_decoded_by_the_compiler():
    buf = bytearray(280)
    buf[0] = 1  # ESTABLISHED
    buf[6] = (9 << 4) | 7  # rcv_wscale 9, snd_wscale 7: the byte pyroute2 decodes wrongly
    buf[7] = 0b101  # app limited, fastopen_client_fail 2
    info = decode.tcp_info_linux(bytes(buf))
    assert (info.snd_wscale, info.rcv_wscale) == (7, 9)
    assert info.delivery_rate_app_limited is True and info.fastopen_client_fail == 2


def test_unknown_states_are_named_not_dropped():
    buf = bytearray(8)
    buf[0], buf[1] = 99, 42
    info = decode.tcp_info_linux(bytes(buf))
    assert info.state == "UNKNOWN(99)" and info.ca_state == "UNKNOWN(42)"


def test_rates_are_bits_per_second_and_unlimited_is_none():
    buf = bytearray(280)
    layout = dict((name, (offset, size)) for name, offset, size in _fast.linux_tcp_info_fields())
    offset, _ = layout["delivery_rate_bps"]
    buf[offset:offset + 8] = (1_250_000).to_bytes(8, "little")
    offset, _ = layout["max_pacing_rate_bps"]
    buf[offset:offset + 8] = b"\xff" * 8
    info = decode.tcp_info_linux(bytes(buf))
    assert info.delivery_rate_bps == 10_000_000
    assert info.max_pacing_rate_bps is None


def test_layout_table_covers_every_linux_field():
    names = [name for name, _, _ in _fast.linux_tcp_info_fields()]
    assert len(names) == len(set(names))
    assert set(names) <= set(TCP_INFO_FIELDS)
    assert [(n, o) for n, _, o in reference._LINUX_TCP_INFO_OFFSETS] == [
        (n, o) for n, o, _ in _fast.linux_tcp_info_fields()]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_garbage_decodes_like_the_reference_or_is_refused(buf):
    try:
        expected = reference.tcp_info_linux(buf)
    except ValueError:
        with pytest.raises(ValueError):
            decode.tcp_info_linux(buf)
    else:
        assert decode.tcp_info_linux(buf) == expected
