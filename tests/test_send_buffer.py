"""send_buffer on real loopback sockets, against the kernel's other views.

Every check runs on the Cython path and on the pure-Python reference
(aiohttp's habit): the two must agree with each other and with ``ss``.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess

import pytest

import sockdiag
from sockdiag import reference

from conftest import drain, fill, requires_linux, requires_ss, wait_until
from testsupport.loopback import SIOCOUTQ, SIOCOUTQNSD, ioctl_int, ss_filter

pytestmark = requires_linux



@pytest.fixture(params=["cython", "python"])
def send_buffer(request):
    return sockdiag.send_buffer if request.param == "cython" else reference.send_buffer


def ss_view(sock) -> dict:
    """Send-Q, notsent and skmem tb of sock's connection, as ss -tmi prints them."""
    out = subprocess.run(
        ["ss", "-tmiHn", "state", "established", *ss_filter(sock)],
        capture_output=True, text=True, check=True,
    ).stdout
    fields = out.split()
    assert fields, f"ss shows no connection {ss_filter(sock)}"
    view = {"send_q": int(fields[1])}
    view["notsent"] = int(m.group(1)) if (m := re.search(r"notsent:(\d+)", out)) else 0
    view["tb"] = int(re.search(r"tb(\d+)", out).group(1))
    view["w"] = int(re.search(r",w(\d+)", out).group(1))
    return view


def test_empty_connection_has_nothing_queued(tcp_pair, send_buffer):
    client, _ = tcp_pair
    split = send_buffer(client)
    assert (split.unacked, split.unsent) == (0, 0)
    assert split.size == client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    assert 0 < split.free <= split.size
    assert split.inflight == 0


def test_full_buffer_split_matches_ioctls(tcp_pair, send_buffer):
    client, _ = tcp_pair
    written = fill(client)
    split = send_buffer(client)
    # The peer does not read: the queue is stable once the receive window closes.
    assert split.unsent == ioctl_int(client, SIOCOUTQNSD)
    assert split.unacked + split.unsent == ioctl_int(client, SIOCOUTQ)
    assert split.inflight == ioctl_int(client, SIOCOUTQ)
    assert 0 < split.inflight <= written
    # unacked may be 0: once the peer's window is shut, everything sent can be
    # acknowledged (seen under an emulated CPU, where the ACKs win the race).
    assert split.unsent > 0 and split.unacked >= 0
    assert split.free == 0  # the writer was just refused: the kernel says full


@requires_ss
def test_full_buffer_split_matches_ss(tcp_pair, send_buffer):
    client, _ = tcp_pair
    fill(client)

    def agrees():
        split = send_buffer(client)
        view = ss_view(client)
        return (
            view["send_q"] == split.unacked + split.unsent
            and view["notsent"] == split.unsent
            and view["tb"] == split.size
            and split.free == max(view["tb"] - view["w"], 0)
        ) or None

    wait_until(agrees, timeout=5)


def test_drained_peer_leaves_nothing_queued(tcp_pair, send_buffer):
    client, server = tcp_pair
    written = fill(client)
    assert send_buffer(client).inflight > 0
    drain(server, written)
    split = wait_until(lambda: (s := send_buffer(client)).inflight == 0 and s)
    assert (split.unacked, split.unsent) == (0, 0)
    assert split.free > 0


def test_cython_and_reference_agree_on_a_held_buffer(tcp_pair):
    client, _ = tcp_pair
    fill(client)
    wait_until(lambda: sockdiag.send_buffer(client) == reference.send_buffer(client))


def test_fd_and_socket_object_give_the_same(tcp_pair):
    client, _ = tcp_pair
    fill(client)
    wait_until(lambda: sockdiag.send_buffer(client.fileno()) == sockdiag.send_buffer(client))


def test_notsent_lowat_limits_what_the_kernel_queues(tcp_pair):
    client, _ = tcp_pair
    lowat = 16384
    sockdiag.set_notsent_lowat(client, lowat)
    assert client.getsockopt(socket.IPPROTO_TCP, 25) == lowat
    assert sockdiag.get_notsent_lowat(client) == lowat
    fill(client)
    split = sockdiag.send_buffer(client)
    # sendmsg checks the limit before each new skb: overshoot is at most one skb.
    assert split.unsent <= lowat + (64 << 10)
    assert split.free > 0  # room in the buffer, yet not writable
    _, writable, _ = select.select([], [client], [], 0)
    assert writable == []
    sockdiag.set_notsent_lowat(client, None)
    assert client.getsockopt(socket.IPPROTO_TCP, 25) == 0


def test_notsent_lowat_off_by_default(tcp_pair):
    client, _ = tcp_pair
    with open("/proc/sys/net/ipv4/tcp_notsent_lowat") as f:
        system = int(f.read())
    expected = None if system >= 2**32 - 1 else system
    assert sockdiag.get_notsent_lowat(client) == expected


def test_negative_notsent_lowat_is_refused(tcp_pair):
    with pytest.raises(ValueError, match="from 0 to 4294967295"):
        sockdiag.set_notsent_lowat(tcp_pair[0], -1)


def test_udp_gives_queued_bytes_and_no_ack_split():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        split = sockdiag.send_buffer(udp)
        assert split.unacked is None
        assert split.unsent == ioctl_int(udp, SIOCOUTQ) == 0
        assert split.size == udp.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        assert split.free == split.size


def test_unix_stream_gives_unread_bytes():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"x" * 3000)
        split = sockdiag.send_buffer(left)
        assert split.unsent is None
        assert split.unacked == ioctl_int(left, SIOCOUTQ) > 3000  # memory, incl. overhead
        assert split.inflight == split.unacked
        right.recv(4096)
        assert sockdiag.send_buffer(left).unacked == 0


def test_listening_socket_is_refused():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(sockdiag.UnsuitableSocket, match="listening"):
            sockdiag.send_buffer(listener)


def test_closed_socket_is_refused():
    client = socket.socket()
    client.close()
    with pytest.raises(sockdiag.UnsuitableSocket, match="closed"):
        sockdiag.send_buffer(client)


def test_closed_fd_is_refused():
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    with pytest.raises(sockdiag.UnsuitableSocket, match=f"fd {fd} is not open"):
        sockdiag.send_buffer(fd)


def test_non_socket_fd_is_refused():
    read_end, write_end = os.pipe()
    try:
        with pytest.raises(sockdiag.UnsuitableSocket, match="not a socket"):
            sockdiag.send_buffer(write_end)
        with pytest.raises(sockdiag.UnsuitableSocket, match="not a socket"):
            sockdiag.tcp_info(write_end)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_other_socket_kinds_are_refused_clearly():
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unix_dgram:
        with pytest.raises(sockdiag.UnsuitableSocket, match="UNIX datagram socket"):
            sockdiag.send_buffer(unix_dgram)


def test_errors_share_one_root():
    assert issubclass(sockdiag.UnsuitableSocket, sockdiag.SockdiagError)
    assert issubclass(sockdiag.NoSuchProcess, sockdiag.SockdiagError)
    assert issubclass(sockdiag.AccessDenied, sockdiag.SockdiagError)
    assert issubclass(sockdiag.NotSupported, sockdiag.SockdiagError)


def test_records_are_frozen(tcp_pair):
    split = sockdiag.send_buffer(tcp_pair[0])
    with pytest.raises(AttributeError):
        split.unsent = 1  # type: ignore[misc]
    assert split.asdict() == {"size": split.size, "unacked": 0, "unsent": 0, "free": split.free}
