"""The macOS platform module: its pure parts everywhere, its syscalls on macOS.

On Linux the syscalls are stubs that must say NotSupported; on macOS (the CI
job) the same tests run against the real kernel, cross-checked with the
system's own tools.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import struct
import subprocess
import sys

import pytest

from testsupport import darwin_buffers as mk
import sockdiag
from sockdiag import _darwin, decode
from sockdiag._common import MACOS, InterfaceCounters, SendBuffer, TcpInfo, snapshot_drain
from sockdiag._exceptions import NotSupported
from testsupport.loopback import connected_pair, drain, fill, wait_until

requires_macos = pytest.mark.skipif(not MACOS, reason="needs macOS (runs in the macOS CI job)")
requires_not_macos = pytest.mark.skipif(MACOS, reason="checks the non-macOS stubs")


def _counters(name, index, rx_bytes, tx_bytes):
    return InterfaceCounters(name=name, index=index, is_up=True, mtu=1500, rx_bytes=rx_bytes,
                             tx_bytes=tx_bytes, rx_packets=1, tx_packets=2, rx_errors=0,
                             tx_errors=0, rx_drops=0, tx_drops=0)


def test_exact_bytes_replace_the_rounded_ones():
    listed = decode.iflist2_darwin(
        mk.ifinfo2(1, {mk.RTA_IFP: mk.sockaddr_dl(1, "lo0")}, ibytes=1024, obytes=2048, ipackets=7)
        + mk.ifinfo2(4, {mk.RTA_IFP: mk.sockaddr_dl(4, "en0")}, ibytes=3072)
        + mk.ifinfo2(9, {mk.RTA_IFP: mk.sockaddr_dl(9, "utun3")}, ibytes=4096))
    exact = [
        decode.ifmibdata_darwin(mk.ifmibdata("lo0", ibytes=5 * 2**32 + 1500, obytes=2100), 1),
        decode.ifmibdata_darwin(mk.ifmibdata("en0", ibytes=3333), 5),  # re-attached: new index
    ]
    merged = _darwin.with_exact_bytes(listed, exact)
    assert (merged["lo0"].rx_bytes, merged["lo0"].tx_bytes) == (5 * 2**32 + 1500, 2100)
    assert merged["lo0"].rx_packets == 7  # the rest is IFLIST2's
    assert merged["en0"].rx_bytes is None and merged["en0"].tx_bytes is None
    assert merged["utun3"].rx_bytes is None


def test_byte_counter_the_kernel_does_not_keep_is_none():
    # A Skywalk-backed interface: received packets counted, received bytes left at 0.
    en0 = _darwin.without_uncounted_bytes(_counters("en0", 4, rx_bytes=0, tx_bytes=9000))
    assert en0.rx_bytes is None and en0.tx_bytes == 9000 and en0.rx_packets == 1
    assert "rx packets" in en0.counters_note and "Skywalk" in en0.counters_note
    # Its rate is unknown, not 0 B/s.
    later = en0.replace(rx_packets=50, tx_bytes=19000)
    rates = sockdiag.interface_rates({"en0": en0}, {"en0": later}, 1.0)["en0"]
    assert rates.rx_bytes_per_s is None and rates.tx_bytes_per_s == 10000
    # Counters that agree stay as they are; an idle interface's zeros are true.
    lo0 = _counters("lo0", 1, rx_bytes=100, tx_bytes=100)
    assert _darwin.without_uncounted_bytes(lo0) is lo0
    idle = _counters("gif0", 2, 0, 0).replace(rx_packets=0, tx_packets=0)
    assert _darwin.without_uncounted_bytes(idle) is idle and idle.counters_note is None


def test_torn_down_connection_says_so():
    # tcp_ctloutput's answer once the TCP control block is freed, as the core raises it.
    def translated(err: int, fd: int) -> Exception:
        return _darwin._exception(OSError(err, os.strerror(err), fd, None, "getsockopt(TCP_INFO)"),
                                  "send_buffer", fd)

    gone = translated(errno.ECONNRESET, 7)
    assert isinstance(gone, sockdiag.UnsuitableSocket)
    assert "fd 7" in str(gone) and "connection is gone" in str(gone)
    assert "refused" not in str(gone) and "not a TCP socket" not in str(gone)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        assert "connection is gone" not in str(translated(errno.ENOPROTOOPT, udp.fileno()))


def test_fd_type_counts_and_hint():
    fds = decode.proc_fdlist_darwin(mk.fd_list([(0, 1), (3, 2), (4, 9), (5, 10), (6, 10), (7, 2)]))
    usn = _darwin.count_fd_types(42, fds)
    assert (usn.socket_fds, usn.channel_fds, usn.netpolicy_fds, usn.nexus_fds) == (2, 2, 1, 0)
    assert usn.has_userspace_flows and "skywalkctl flow -P 42" in usn.hint
    plain = _darwin.count_fd_types(42, [(0, "vnode"), (3, "socket"), (4, "netpolicy")])
    assert not plain.has_userspace_flows and plain.hint is None


def test_queue_delay_from_one_look_with_what_macos_gives():
    # macOS has no delivery rate, chrono counters nor probes: its send-bandwidth
    # estimate stands in, and nothing says why bytes wait.
    assert snapshot_drain(125_000, 0, 10, TcpInfo(snd_bw_bps=1_000_000)) == (1.0, None, "delivery_rate", None)
    assert snapshot_drain(0, 0, 10, TcpInfo()) == (0.0, "application", "empty", 0.0)  # nothing waits
    assert snapshot_drain(0, 4096, 0, TcpInfo()) == (0.0, "sender_buffer", "empty", 0.0)  # all in flight
    assert snapshot_drain(125_000, 0, 10, TcpInfo(snd_bw_bps=0)) == (None, None, "no_rate", None)
    assert snapshot_drain(125_000, 0, 10, None) == (None, None, "no_tcp_info", None)
    assert snapshot_drain(None, None, None, TcpInfo()) == (None, None, None, None)
    # A zero window the platform reports is the receiver's doing.
    assert snapshot_drain(125_000, 0, 10, TcpInfo(snd_wnd=0, snd_mss=1448, snd_bw_bps=8)) == (
        None, "receiver", "receiver_limited", None)


def test_state_names_as_linux_spells_them():
    assert _darwin._wanted_states(None) is None
    assert _darwin._wanted_states(["established", "close-wait"]) == {"ESTABLISHED", "CLOSE_WAIT"}
    with pytest.raises(ValueError, match="unknown TCP state"):
        _darwin._wanted_states(["ESTABLISHED", "bogus"])


def test_split_of_own_socket():
    info = decode.socket_fdinfo_darwin(mk.socket_fdinfo(snd_cc=1000, snd_hiwat=4000, mss=1448), 5)
    tcp = TcpInfo(state="ESTABLISHED", snd_bw_bps=80_000)
    split = _darwin.split_socket_info(info, SendBuffer(size=4096, unacked=600, unsent=500, free=2996), tcp)
    assert (split.send_queue, split.unacked, split.unsent, split.free, split.sndbuf) == (
        1100, 600, 500, 2996, 4096)
    assert split.queue_delay_s == pytest.approx(0.05) and split.tcp is tcp
    assert split.local == info.local and split.fd == 5


def test_undecodable_kernel_answer_is_one_line_not_supported(monkeypatch):
    # A macOS whose layouts differ: the decoders' ValueError reaches the user
    # as NotSupported, which the CLI prints as one line.
    monkeypatch.setattr(_darwin._fast, "darwin_proc_fdlist", lambda pid: b"\0" * 7)
    with pytest.raises(NotSupported, match="layout sockdiag does not know"):
        _darwin.process_sockets(123)
    with pytest.raises(ValueError, match="unknown TCP state"):
        _darwin.process_sockets(123, states=["bogus"])  # the caller's mistake stays ValueError


def test_own_split_keeps_the_libproc_view_when_the_fd_changed():
    # The fd was closed or reused between the listing and the read: no split,
    # no exception, no leaked descriptor.
    read_end, write_end = os.pipe()
    client, server = connected_pair()
    try:
        open_before = len(os.listdir("/dev/fd"))
        not_a_socket = decode.socket_fdinfo_darwin(mk.socket_fdinfo(), read_end)
        assert _darwin._with_own_split(not_a_socket) is not_a_socket
        other_connection = decode.socket_fdinfo_darwin(
            mk.socket_fdinfo(local=("127.0.0.1", 1), remote=("127.0.0.1", 2)), client.fileno())
        assert _darwin._with_own_split(other_connection) is other_connection
        assert len(os.listdir("/dev/fd")) == open_before
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        client.close()
        server.close()


def test_public_names_by_platform():
    assert hasattr(sockdiag, "userspace_networking") == MACOS
    assert ("userspace_networking" in sockdiag.__all__) == MACOS


@requires_not_macos
@pytest.mark.parametrize("call", [
    lambda: _darwin.interfaces(),
    lambda: _darwin.process_sockets(os.getpid()),
    lambda: _darwin.userspace_networking(os.getpid()),
    lambda: _darwin.fd_headroom(os.getpid()),
], ids=["interfaces", "process_sockets", "userspace_networking", "fd_headroom"])
def test_syscalls_elsewhere_are_not_supported(call):
    with pytest.raises(NotSupported, match="macOS only"):
        call()


@requires_not_macos
def test_tcp_info_elsewhere_is_not_supported():
    client, server = connected_pair()
    with client, server, pytest.raises(NotSupported):
        _darwin.tcp_info(client)


# --- the real kernel (macOS CI job) --------------------------------------------------


SO_NWRITE, SO_NREAD, TCP_CONNECTION_INFO = 0x1024, 0x1020, 0x106


def _reference_send_buffer(client: socket.socket, server: socket.socket) -> SendBuffer:
    """The macOS split from public interfaces only (the oracle; not the private tcp_info).

    Python's own getsockopt: SO_SNDBUF, SO_NWRITE (the send buffer's count),
    the peer's SO_NREAD (bytes it holds unread) and the public
    tcp_connection_info's tcpi_txbytes (64) and tcpi_txretransmitbytes (72).
    Once the peer, not reading, has a full window, all it received was
    acknowledged: unacked = first transmissions - what the peer holds.
    """
    sndbuf = client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    nwrite = client.getsockopt(socket.SOL_SOCKET, SO_NWRITE)
    received = server.getsockopt(socket.SOL_SOCKET, SO_NREAD)
    txbytes, retransmitted = struct.unpack_from(
        "<QQ", client.getsockopt(socket.IPPROTO_TCP, TCP_CONNECTION_INFO, 112), 64)
    unacked = min(max(txbytes - retransmitted - received, 0), nwrite)
    return SendBuffer(size=sndbuf, unacked=unacked, unsent=nwrite - unacked, free=max(sndbuf - nwrite, 0))


def _agrees(buffer: SendBuffer, reference: SendBuffer) -> bool:
    # A zero-window probe byte is in txunacked but not in txbytes.
    return ((buffer.size, buffer.free, buffer.inflight) == (reference.size, reference.free, reference.inflight)
            and abs(buffer.unacked - reference.unacked) <= 1)


@requires_macos
def test_send_buffer_split_on_macos(family):
    client, server = connected_pair(family)
    with client, server:
        written = fill(client)
        buffer = sockdiag.send_buffer(client)
        assert buffer.unacked + buffer.unsent > 0 and buffer.free >= 0
        # The peer does not read: once its window is full the numbers hold still,
        # and SO_NWRITE (a separate call) is what the peer has not received.
        wait_until(lambda: client.getsockopt(socket.SOL_SOCKET, SO_NWRITE)
                   == written - server.getsockopt(socket.SOL_SOCKET, SO_NREAD))
        wait_until(lambda: _agrees(sockdiag.send_buffer(client), _reference_send_buffer(client, server)))
        info = sockdiag.tcp_info(client)
        assert info.state == "ESTABLISHED" and info.send_buffer_bytes is not None
        assert info.bytes_sent is not None and info.rtt_us is not None
        drain(server, written)
        wait_until(lambda: sockdiag.send_buffer(client).inflight == 0)


@requires_macos
def test_unix_stream_is_refused_clearly_on_macos():
    a, b = socket.socketpair()
    with a, b, pytest.raises(sockdiag.UnsuitableSocket, match="peer"):
        sockdiag.send_buffer(a)


@requires_macos
def test_notsent_lowat_on_macos():
    client, server = connected_pair()
    with client, server:
        assert sockdiag.get_notsent_lowat(client) is None
        sockdiag.set_notsent_lowat(client, 16384)
        assert sockdiag.get_notsent_lowat(client) == 16384
        sockdiag.set_notsent_lowat(client, None)
        assert sockdiag.get_notsent_lowat(client) is None


@requires_macos
def test_process_sockets_of_self_on_macos():
    client, server = connected_pair()
    with client, server:
        written = fill(client)
        port = client.getsockname()[1]
        sockets = _darwin.process_sockets(os.getpid())
        mine = [s for s in sockets if s.local_port == port]
        assert len(mine) == 1
        assert mine[0].fd == client.fileno() and mine[0].state == "ESTABLISHED"
        assert mine[0].unacked is not None and mine[0].unsent is not None
        assert mine[0].send_queue == mine[0].unacked + mine[0].unsent > 0
        assert any(s.remote_port == port for s in sockets)  # the server side
        listening = _darwin.process_sockets(os.getpid(), states=["listen"])
        assert all(s.state == "LISTEN" for s in listening)
        drain(server, written)


@requires_macos
def test_process_sockets_of_another_process_on_macos():
    # A child holding a connection: only the libproc view (no split) is given.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import socket, sys, time\n"
             "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
             "s.sendall(b'x' * 1000)\n"
             "print('ok', flush=True); time.sleep(30)\n", str(port)],
            stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ok"
            sockets = _darwin.process_sockets(child.pid)
            mine = [s for s in sockets if s.remote_port == port]
            assert len(mine) == 1, sockets
            assert mine[0].unacked is None and mine[0].unsent is None
            assert mine[0].sndbuf and mine[0].send_queue is not None
        finally:
            child.kill()
            child.wait()


@requires_macos
def test_process_sockets_errors_on_macos():
    with pytest.raises(sockdiag.NoSuchProcess):
        _darwin.process_sockets(2**22 + 12345)
    if os.geteuid() != 0:
        with pytest.raises(sockdiag.AccessDenied):
            _darwin.process_sockets(1)  # launchd


@requires_macos
def test_userspace_networking_and_fd_headroom_of_self_on_macos():
    client, server = connected_pair()
    with client, server:
        usn = _darwin.userspace_networking(os.getpid())
        assert usn.socket_fds >= 2
        headroom = _darwin.fd_headroom(os.getpid())
        assert headroom.open_fds >= 3 and (headroom.soft_limit is None or headroom.soft_limit >= headroom.open_fds)


def _netstat_bytes(name: str) -> tuple[int, int]:
    """(Ibytes, Obytes) of one interface from Apple's own netstat -ib."""
    out = subprocess.run(["netstat", "-ibn", "-I", name], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    header = out[0].split()
    row = next(line.split() for line in out[1:] if line.split()[0] == name and "<Link" in line)
    # Link rows have no Address column value when the interface has no MAC.
    offset = len(row) - len(header)
    return int(row[header.index("Ibytes") + offset]), int(row[header.index("Obytes") + offset])


@requires_macos
@pytest.mark.skipif(shutil.which("netstat") is None, reason="needs netstat")
def test_interfaces_on_macos_against_netstat():
    counters = sockdiag._platform.interfaces()
    assert "lo0" in counters
    lo = counters["lo0"]
    assert lo.is_up and lo.index and lo.mtu and lo.rx_bytes is not None
    ours_before = lo.rx_bytes
    netstat_rx, _ = _netstat_bytes("lo0")
    ours_after = sockdiag._platform.interfaces()["lo0"].rx_bytes
    # Loopback moves while we look: netstat's value lies between our two reads
    # (allowing 1 KiB of rounding in case this interpreter is not Apple-signed).
    assert ours_before - 1024 <= netstat_rx <= ours_after + 1024


@requires_macos
def test_watch_json_of_own_process_on_macos():
    from click.testing import CliRunner

    from sockdiag.cli import cli

    client, server = connected_pair()
    with client, server:
        written = fill(client)
        result = CliRunner().invoke(cli, ["watch", str(os.getpid()), "--once", "--json"])
        assert result.exit_code == 0, result.output
        sample = json.loads(result.output.splitlines()[0])
        port = client.getsockname()[1]
        mine = [s for s in sample["sockets"] if s["local"].endswith(f":{port}")]
        assert len(mine) == 1 and mine[0]["unacked"] is not None and mine[0]["unsent"] is not None
        drain(server, written)
