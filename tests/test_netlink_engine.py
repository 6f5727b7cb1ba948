"""The netlink engine's kernel filter: inet_diag bytecode passed to the sock_diag dump."""

from __future__ import annotations

import errno
import os
import socket
import struct

import pytest

from sockdiag import _fast, _linux
from sockdiag._common import LINUX

pytestmark = pytest.mark.skipif(not LINUX, reason="sock_diag is Linux's")

INET_DIAG_BC_S_EQ = 11  # enum in <linux/inet_diag.h>
EVERY_STATE = _linux.state_mask(None)


def sport_equals(port: int) -> bytes:
    """The bytecode `ss 'sport = :PORT'` compiles: S_EQ, then the port in the next op's "no".

    Match: jump 8 bytes, to the end (accept); no match: jump 12, past it (reject).
    """
    return struct.pack("=BBH", INET_DIAG_BC_S_EQ, 8, 12) + struct.pack("=BBH", 0, 0, port)


def endpoints(sockets) -> set:
    return {(s.local, s.remote, s.state) for s in sockets}


@pytest.fixture
def two_servers():
    opened = []
    for _ in range(2):
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        opened += [server, client, accepted]
    yield opened[0].getsockname()[1], opened[3].getsockname()[1]
    for sock in opened:
        sock.close()


def test_the_kernel_filter_keeps_exactly_the_sockets_it_matches(two_servers):
    port, other_port = two_servers
    everything = _fast.process_sockets_linux(os.getpid(), EVERY_STATE)
    filtered = _fast.process_sockets_linux(os.getpid(), EVERY_STATE, sport_equals(port))
    expected = endpoints(s for s in everything if s.local_port == port)
    assert len(expected) == 2  # the listener and the accepted connection
    assert endpoints(filtered) == expected
    assert any(s.local_port == other_port for s in everything)
    # Empty bytecode is no filter.
    assert endpoints(_fast.process_sockets_linux(os.getpid(), EVERY_STATE, b"")) == endpoints(everything)


def test_a_filter_the_kernel_refuses_raises_its_error(two_servers):
    jump_outside = struct.pack("=BBH", INET_DIAG_BC_S_EQ, 64, 64) + struct.pack("=BBH", 0, 0, 1)
    with pytest.raises(OSError) as refused:
        _fast.process_sockets_linux(os.getpid(), EVERY_STATE, jump_outside)
    assert refused.value.errno == errno.EINVAL


def test_a_filter_longer_than_an_attribute_is_a_value_error():
    with pytest.raises(ValueError, match="bytecode"):
        _fast.process_sockets_linux(os.getpid(), EVERY_STATE, bytes(70000))


TCP_MD5SIG = 14  # <linux/tcp.h>


def md5_key(peer: str) -> bytes:
    """A struct tcp_md5sig: a TCP-MD5 key for the IPv4 peer."""
    address = struct.pack("=H2s4s", socket.AF_INET, b"", socket.inet_aton(peer)).ljust(128, b"\0")
    return address + struct.pack("=BBHi80s", 0, 0, 16, 0, b"k" * 16)


@pytest.mark.skipif(os.geteuid() != 0, reason="sock_diag shows TCP-MD5 keys to CAP_NET_ADMIN only")
def test_an_answer_longer_than_its_slot_is_asked_for_again():
    # Each TCP-MD5 key adds 100 bytes to a socket's message: with 12, an
    # answer to an exact request outgrows the slot nl_ask receives it in.
    server = socket.create_server(("127.0.0.1", 0))
    try:
        for peer in range(12):
            server.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5_key(f"127.0.1.{peer + 1}"))
        inode = os.fstat(server.fileno()).st_ino
        names: dict[int, bytes] = {}
        dumped = [s for s in _fast.namespace_sockets_linux(EVERY_STATE, names=names) if s.inode == inode]
        asked, missing = _fast.ask_sockets_linux([names[inode]] * 60, EVERY_STATE)  # two batches
        assert missing == 0 and len(asked) == 60
        assert {(s.inode, s.local, s.state, s.recv_queue) for s in asked} == {
            (s.inode, s.local, s.state, s.recv_queue) for s in dumped}
    finally:
        server.close()
