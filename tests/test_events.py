"""The sock_diag layer of `top`: counters dump, fd scan, destroy notifications, decoder."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiag import _fast, decode

from conftest import connected_pair, drain, fill, requires_linux, requires_ss, wait_until
from testsupport.loopback import SIOCOUTQNSD, ioctl_int, ss_filter
from unprivileged import run_unprivileged

pytestmark = requires_linux


def inode(sock: socket.socket) -> int:
    return os.fstat(sock.fileno()).st_ino


def dumped(sock: socket.socket):
    """sock's entry in a counters dump, by inode."""
    return next((s for s in _fast.tcp_counters()[0] if s[1] == inode(sock)), None)


def test_dump_counts_the_bytes_of_both_ends(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"x" * 300_000)
    drain(server, 300_000)
    server.sendall(b"y" * 1000)
    drain(client, 1000)
    # (sent - retrans, acked, received): the client's acked counts its SYN, the
    # passive side has no SYN of its own acked; bytes_sent counts retransmissions.
    def payload(sock):
        _cookie, _inode, (sent, acked, received, retrans), _port, _address, _waiting = dumped(sock)
        return sent - retrans, acked, received

    wait_until(lambda: payload(client) == (300_000, 300_001, 1000))
    wait_until(lambda: payload(server) == (1000, 1000, 300_000))
    cookie, _inode, _counters, port, address, waiting = dumped(client)
    assert waiting is None  # nothing unsent
    assert port == client.getsockname()[1]
    family = socket.AF_INET6 if client.family == socket.AF_INET6 else socket.AF_INET
    packed = socket.inet_pton(family, client.getsockname()[0])
    assert address[:len(packed)] == packed


@requires_ss
def test_dump_matches_ss(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"z" * 123_456)
    drain(server, 123_456)
    wait_until(lambda: dumped(client)[2][1] == 123_457)  # everything acked: the counters stay put
    out = subprocess.run(["ss", "-tniH", "state", "established", *ss_filter(client)],
                         capture_output=True, text=True, check=True).stdout
    ss_counters = {k: int(v) for k, v in re.findall(r"\b(bytes_sent|bytes_acked|bytes_received):(\d+)", out)}
    _cookie, _inode, (sent, acked, received, _retrans), _port, _address, _waiting = dumped(client)
    assert (ss_counters["bytes_sent"], ss_counters["bytes_acked"]) == (sent, acked)
    assert received == 0


def test_listeners_are_listed_apart():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sockets, listeners = _fast.tcp_counters()
        assert (listener.getsockname()[1], socket.inet_aton("127.0.0.1") + bytes(12), inode(listener)) in listeners
        assert inode(listener) not in {s[1] for s in sockets}


def test_dump_says_what_waits_and_why(tcp_pair):
    client, server = tcp_pair
    fill(client)  # the peer does not read: its window closes

    def waiting():
        found = dumped(client)[5]
        return found is not None and found[0] == ioctl_int(client, SIOCOUTQNSD) and found
    assert wait_until(waiting)[1] == "receiver"


def test_socket_owners_finds_our_sockets(tcp_pair):
    owners, unreadable = _fast.socket_owners([os.getpid()])
    assert owners[inode(tcp_pair[0])] == os.getpid()
    assert owners[inode(tcp_pair[1])] == os.getpid()
    assert unreadable == 0
    everyone, _ = _fast.socket_owners()
    assert everyone[inode(tcp_pair[0])] == os.getpid()


def test_socket_owners_of_a_gone_process_is_empty():
    child = subprocess.Popen(["true"])
    child.wait()
    assert _fast.socket_owners([child.pid]) == ({}, 0)


def test_destroy_notification_carries_the_final_counters(family):
    with _fast.DestroyListener() as listener:
        client, server = connected_pair(family)
        client.sendall(b"x" * 200_000)
        drain(server, 200_000)
        server.sendall(b"y" * 5000)
        drain(client, 5000)
        cookie = dumped(client)[0]
        client.close()
        server.close()
        events = []
        wait_until(lambda: events.extend(listener.drain()) or any(e.cookie == cookie for e in events))
        event = next(e for e in events if e.cookie == cookie)
        assert event.family == ("IPv6" if family == socket.AF_INET6 else "IPv4")
        assert event.tcp.bytes_sent - event.tcp.bytes_retrans == 200_000
        assert event.tcp.bytes_received in (5000, 5001)  # + the peer's FIN
        assert listener.overflows == 0


def test_dropped_notifications_are_counted():
    # A receive buffer far too small for a burst: the kernel drops some
    # notifications (ENOBUFS) and the listener says so rather than hiding it.
    with _fast.DestroyListener(receive_buffer_bytes=2048) as listener, socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(256)
        for _ in range(200):
            client = socket.create_connection(server.getsockname())
            peer, _ = server.accept()
            client.close()
            peer.close()
        wait_until(lambda: listener.drain() is not None and listener.overflows > 0)
    with _fast.DestroyListener() as roomy:
        assert roomy.overflows == 0


def test_destroy_notifications_need_no_privilege():
    # The kernel creates the sock_diag netlink socket with NL_CFG_F_NONROOT_RECV:
    # any user joins the destroy groups (checked here as nobody, no capabilities).
    code = ("import socket, time\n"
            "from sockdiag import _fast\n"
            "listener = _fast.DestroyListener()\n"
            "with socket.socket() as server:\n"
            "    server.bind(('127.0.0.1', 0)); server.listen()\n"
            "    client = socket.create_connection(server.getsockname()); peer, _ = server.accept()\n"
            "    client.sendall(b'x' * 4321); peer.recv(10000); client.close(); peer.close()\n"
            "for _ in range(100):\n"
            "    sent = [e.tcp.bytes_sent for e in listener.drain()]\n"
            "    if 4321 in sent: print('got', sent); break\n"
            "    time.sleep(0.02)\n")
    out = run_unprivileged("-c", code)
    assert out.returncode == 0, out.stderr
    assert "got" in out.stdout


# --- the decoder on synthetic and hostile buffers -----------------------------


def _diag_msg(cookie=7, sport=8080, dport=40000, info: bytes = b"") -> bytes:
    head = struct.pack("=BBBB", socket.AF_INET, 7, 0, 0) + struct.pack(">HH", sport, dport)
    head += socket.inet_aton("10.0.0.1") + bytes(12) + socket.inet_aton("10.0.0.2") + bytes(12)
    head += struct.pack("=I2IIIIII", 0, cookie & 0xFFFFFFFF, cookie >> 32, 0, 0, 0, 0, 0)
    attr = struct.pack("=HH", 4 + len(info), 2) + info
    return head + attr + bytes(-len(attr) % 4)


def test_decoder_reads_a_synthetic_message():
    info = bytearray(280)
    info[0] = 7  # CLOSE
    fields = {name: (offset, size) for name, offset, size in _fast.linux_tcp_info_fields()}
    for name, value in (("bytes_sent", 1234), ("bytes_received", 99), ("bytes_acked", 1235)):
        offset, size = fields[name]
        info[offset:offset + size] = value.to_bytes(size, "little" if struct.pack("=H", 1)[0] else "big")
    event = decode.tcp_destroy_event_linux(_diag_msg(cookie=(5 << 32) | 9, info=bytes(info)))
    assert event.cookie == (5 << 32) | 9
    assert (event.local_address, event.local_port) == ("10.0.0.1", 8080)
    assert (event.remote_address, event.remote_port) == ("10.0.0.2", 40000)
    assert event.state == "CLOSE"
    assert (event.tcp.bytes_sent, event.tcp.bytes_received, event.tcp.bytes_acked) == (1234, 99, 1235)


def test_decoder_without_info_gives_no_tcp():
    event = decode.tcp_destroy_event_linux(_diag_msg()[:72])
    assert event.tcp is None


@pytest.mark.parametrize("length", [0, 1, 71])
def test_decoder_refuses_truncated_messages(length):
    with pytest.raises(ValueError):
        decode.tcp_destroy_event_linux(_diag_msg()[:length])


def test_decoder_refuses_an_attribute_longer_than_the_message():
    message = bytearray(_diag_msg(info=bytes(40)))
    message[72:74] = struct.pack("=H", 400)
    with pytest.raises(ValueError):
        decode.tcp_destroy_event_linux(bytes(message))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_decoder_never_crashes_on_garbage(garbage):
    try:
        event = decode.tcp_destroy_event_linux(garbage)
    except ValueError:
        return
    assert len(garbage) >= 72
    assert event.tcp is None or event.tcp.state is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_decoder_never_crashes_on_garbage_attributes(tail):
    try:
        decode.tcp_destroy_event_linux(_diag_msg()[:72] + tail)
    except ValueError:
        pass
