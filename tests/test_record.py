"""sockdiag.record, InstrumentedSocket and record_stream on real loopback sockets."""

from __future__ import annotations

import asyncio
import csv
import os
import selectors
import socket
import struct
import sys
import threading
import time

import pytest

import sockdiag
from sockdiag import InstrumentedSocket, NotSupported, Sample, UnsuitableSocket
from sockdiag._common import snapshot_drain

from conftest import connected_pair, drain, fill, requires_linux, wait_until
from testsupport.loopback import held_still

pytestmark = requires_linux

BUFFER_FIELDS = ("size", "unacked", "unsent", "free")


def buffer_of(sample) -> tuple:
    return tuple(getattr(sample, name) for name in BUFFER_FIELDS)


FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"  # Linux, macOS


def open_fds() -> set[str]:
    return set(os.listdir(FD_DIR))


@pytest.fixture
def no_leaks():
    """Fails the test if it leaves a thread or an fd behind (besides its own sockets)."""
    threads = threading.active_count()
    fds = open_fds()
    yield
    assert threading.active_count() == threads
    assert open_fds() <= fds


@pytest.fixture
def full_pair(tcp_pair):
    """A pair whose client send buffer is held full and still: nobody reads."""
    client, server = tcp_pair
    fill(client)
    previous = [None]

    def settled():
        # The kernel collapses queues and probes the zero window for a while.
        now = sockdiag.send_buffer(client)
        stable, previous[0] = now == previous[0], now
        return stable

    wait_until(settled, step=0.05)
    return client, server


# --- samples agree with direct calls ------------------------------------------


def test_thread_samples_agree_with_send_buffer(full_pair, no_leaks):
    client, _ = full_pair

    def agree():
        before = sockdiag.send_buffer(client)
        with sockdiag.record(client, interval=0.001) as rec:
            time.sleep(0.03)
        after = sockdiag.send_buffer(client)
        kept = {buffer_of(s) for s in rec.samples}
        return before == after and kept == {buffer_of(before)} and len(rec.samples) >= 5

    wait_until(agree)


def test_queue_delay_and_fields_agree_with_tcp_info(full_pair):
    client, _ = full_pair
    fields = ("state", "snd_mss", "delivery_rate_bps")

    def agree():
        info = sockdiag.tcp_info(client)
        buf = sockdiag.send_buffer(client)
        with sockdiag.record(client, interval=0.002, fields=fields) as rec:
            time.sleep(0.01)
        # The pure-Python rules (sd_snapshot_drain's twin); the peer does not
        # read, so they give no delay while its window is full.
        expected = snapshot_drain(buf.unsent, buf.unacked, buf.free, info)[0]
        return all(
            s.queue_delay_s == expected and s.unsent == buf.unsent
            and (s.state, s.snd_mss, s.delivery_rate_bps) == (info.state, info.snd_mss, info.delivery_rate_bps)
            for s in rec.samples)

    wait_until(agree)


@pytest.mark.skipif(not sockdiag.LINUX, reason="the fast sampler is for Linux TCP")
def test_fast_sampler_agrees_with_the_python_reference(full_pair):
    client, _ = full_pair
    fields = ("state", "rtt_us", "delivery_rate_bps", "snd_wscale", "notsent_bytes")
    rec = InstrumentedSocket(client, fields=fields).recording
    assert rec._take != rec._take_python  # Linux TCP takes the fast path
    fd = client.fileno()

    def agree():
        before = time.monotonic()
        fast = rec._take(fd)
        reference = rec._take_python(fd)
        after = time.monotonic()
        assert type(fast) is type(reference)
        assert before - 1e-6 <= fast.time_s <= reference.time_s + 1e-6 <= after + 2e-6
        strip = lambda sample: {k: v for k, v in sample.asdict().items() if k != "time_s"}
        return strip(fast) == strip(reference) and fast.unsent > 0

    wait_until(agree)


def test_fields_give_a_sample_subclass(tcp_pair):
    client, _ = tcp_pair
    with sockdiag.record(client, interval=None, fields=("rtt_us", "state")) as rec:
        pass
    sample = rec.samples[0]
    assert isinstance(sample, Sample) and rec.fields == ("rtt_us", "state")
    assert sample.rtt_us is not None and sample.state == "ESTABLISHED"
    assert list(sample.asdict())[-2:] == ["rtt_us", "state"]


def test_samples_follow_the_buffer_as_it_fills_and_drains(tcp_pair):
    client, server = tcp_pair
    with sockdiag.record(client, interval=None) as rec:
        written = fill(rec.socket)  # through the InstrumentedSocket: a sample per send
        drain(server, written)
        wait_until(lambda: sockdiag.send_buffer(client).inflight == 0)
    samples = rec.samples
    assert samples[0].unsent == 0
    assert max(s.unsent for s in samples) > 0
    assert samples[-1].unacked == samples[-1].unsent == 0
    assert [s.time_s for s in samples] == sorted(s.time_s for s in samples)


def test_non_tcp_socket_records_without_queue_delay(no_leaks):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.1", 9))
        with sockdiag.record(udp, interval=None) as rec:
            rec.socket.send(b"x" * 100)
        assert all(s.queue_delay_s is None and s.unacked is None for s in rec.samples)
        with pytest.raises(UnsuitableSocket):
            with sockdiag.record(udp, fields=("rtt_us",)):
                pass


def test_a_recording_by_hand(tcp_pair, no_leaks):
    client, server = tcp_pair
    rec = sockdiag.Recording(client, fields=("snd_mss",), capacity=10)  # first sample now
    client.sendall(b"x" * 1000)
    assert rec.sample() is True
    assert len(rec.samples) == 2 and rec.samples[-1].snd_mss > 0
    client.close()
    assert rec.sample() is False and rec.socket_closed and len(rec.samples) == 2


# --- summary, CSV, plot --------------------------------------------------------


def nearest_rank(values, percent):
    values = sorted(values)
    index = -(-len(values) * percent // 100) - 1
    return values[max(int(index), 0)]


def test_summary_matches_the_samples(tcp_pair):
    client, server = tcp_pair
    with sockdiag.record(client, interval=0.001) as rec:
        written = fill(client)
        time.sleep(0.05)
        drain(server, written)
        time.sleep(0.01)
    samples = rec.samples
    summary = rec.summary()
    assert summary.samples == len(samples) and summary.dropped == 0
    assert summary.unsent_max_bytes == max(s.unsent for s in samples) > 0
    assert summary.unsent_p50_bytes == nearest_rank([s.unsent for s in samples], 50)
    assert summary.unacked_p99_bytes == nearest_rank([s.unacked for s in samples], 99)
    delays = [s.queue_delay_s for s in samples if s.queue_delay_s is not None]
    assert summary.queue_delay_max_s == (max(delays) if delays else None)
    full = sum(b.time_s - a.time_s for a, b in zip(samples, samples[1:]) if a.free == 0)
    assert summary.full_buffer_s == pytest.approx(full)
    assert 0 <= summary.full_buffer_s <= summary.duration_s


def test_ring_buffer_keeps_the_newest_and_counts_dropped(tcp_pair):
    client, server = tcp_pair
    with sockdiag.record(client, interval=None, capacity=5) as rec:
        for _ in range(20):
            rec.socket.send(b"x")
    drain(server, 20)
    # One sample on entry, one per send, one on exit.
    assert len(rec.samples) == 5 and rec.dropped == 22 - 5
    assert rec.summary().dropped == 17


def test_to_csv(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.1", 9))
        with sockdiag.record(udp, interval=None) as rec:
            rec.socket.send(b"x")
    path = tmp_path / "rec.csv"
    rec.to_csv(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(rec.samples) == 3
    for row, sample in zip(rows, rec.samples):
        assert float(row["time_s"]) == sample.time_s
        assert int(row["free"]) == sample.free
        assert row["unacked"] == "" and row["queue_delay_s"] == ""


def test_to_csv_has_the_chosen_fields(tcp_pair, tmp_path):
    client, _ = tcp_pair
    with sockdiag.record(client, interval=None, fields=("rtt_us", "snd_cwnd_segs")) as rec:
        pass
    rec.to_csv(tmp_path / "rec.csv")
    header = (tmp_path / "rec.csv").read_text().splitlines()[0].split(",")
    assert header[-2:] == ["rtt_us", "snd_cwnd_segs"]


def test_csv_columns_hold_what_the_kernel_says(full_pair, tmp_path):
    """The CSV's columns keep their names and hold, for a buffer held full,
    SIOCOUTQNSD (unsent), SIOCOUTQ less it (unacked), SO_SNDBUF (size) and
    TCP_INFO's rtt and cwnd read with getsockopt: a swapped column fails."""
    client, _ = full_pair

    def agree():
        unsent, unacked = held_still(client)
        raw = client.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        rtt_us, cwnd = struct.unpack_from("=I", raw, 68)[0], struct.unpack_from("=I", raw, 80)[0]
        with sockdiag.record(client, interval=None, fields=("rtt_us", "snd_cwnd_segs")) as rec:
            rec.sample()
        rec.to_csv(tmp_path / "rec.csv")
        with open(tmp_path / "rec.csv", newline="") as f:
            header, *rows = list(csv.reader(f))
        assert header == ["time_s", "size", "unacked", "unsent", "free", "queue_delay_s", "limited_by",
                          "stalled_s", "rtt_us", "snd_cwnd_segs"]
        assert len(rows) == len(rec.samples) == 3
        assert [float(row[0]) for row in rows] == [s.time_s for s in rec.samples]
        expected = [str(client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)), str(unacked), str(unsent)]
        return (held_still(client) == (unsent, unacked)
                and all(row[1:4] == expected and row[8:] == [str(rtt_us), str(cwnd)] for row in rows))

    wait_until(agree)


class _KeptFigure:
    """figure_class's stand-in: matplotlib's Figure, each one kept to be read."""

    made: list = []

    def __new__(cls, *args, **kwargs):
        from matplotlib.figure import Figure

        figure = Figure(*args, **kwargs)
        cls.made.append(figure)
        return figure


def test_plot_draws_the_fields_in_their_units(full_pair, tmp_path, monkeypatch):
    """Recording.plot's lines are the send buffer's fields, labelled as the
    tables label them, in KiB: for a buffer held full, SIOCOUTQNSD / 1024 and
    SIOCOUTQ less it."""
    pytest.importorskip("matplotlib")
    from sockdiag import recording

    client, _ = full_pair
    monkeypatch.setattr(recording, "figure_class", lambda: _KeptFigure)
    monkeypatch.setattr(_KeptFigure, "made", [])

    def agree():
        unsent, unacked = held_still(client)
        with sockdiag.record(client, interval=None) as rec:
            pass
        rec.plot(tmp_path / "rec.png")
        top = _KeptFigure.made[-1].axes[0]
        lines = {line.get_label(): list(line.get_ydata()) for line in top.get_lines()}
        assert top.get_ylabel() == "KiB"
        assert list(lines) == ["UNACKED", "UNSENT", "FREE", "SIZE"]
        size = client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        return (held_still(client) == (unsent, unacked) and lines["UNSENT"] == [unsent / 1024] * 2
                and lines["UNACKED"] == [unacked / 1024] * 2 and lines["SIZE"] == [size / 1024] * 2)

    wait_until(agree)
    assert (tmp_path / "rec.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_writes_a_png(tcp_pair, tmp_path):
    pytest.importorskip("matplotlib")
    client, server = tcp_pair
    with sockdiag.record(client, interval=0.001) as rec:
        drain(server, fill(client))
    rec.plot(tmp_path / "rec.png")
    assert (tmp_path / "rec.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_a_clear_error(tcp_pair, tmp_path, monkeypatch):
    client, _ = tcp_pair
    with sockdiag.record(client, interval=None) as rec:
        pass
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(NotSupported, match=r"sockdiag\[plot\]"):
        rec.plot(tmp_path / "rec.png")


# --- bad input -------------------------------------------------------------------


def test_bad_input_raises_clearly_and_leaves_nothing(no_leaks):
    client, server = connected_pair()
    with client, server:
        with pytest.raises(ValueError, match="interval"):
            sockdiag.record(client, interval=0).__enter__()
        with pytest.raises(ValueError, match="unknown TcpInfo field"):
            sockdiag.record(client, fields=("no_such_field",)).__enter__()
        with pytest.raises(TypeError, match="sequence"):
            sockdiag.record(client, fields="rtt_us").__enter__()
        with pytest.raises(ValueError, match="capacity"):
            sockdiag.record(client, capacity=0).__enter__()
        with pytest.raises(TypeError, match="socket object"):
            sockdiag.record(client.fileno()).__enter__()
    with pytest.raises(UnsuitableSocket, match="closed"):
        sockdiag.record(client).__enter__()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(UnsuitableSocket, match="listening"):
            sockdiag.record(listener).__enter__()


# --- no thread or fd left behind; closing mid-recording --------------------------


@pytest.mark.parametrize("interval", [0.001, None], ids=["thread", "per-send"])
def test_nothing_left_behind_when_the_body_raises(interval, no_leaks):
    client, server = connected_pair()
    with client, server:
        with pytest.raises(RuntimeError, match="body failed"):
            with sockdiag.record(client, interval=interval) as rec:
                rec.socket.send(b"x")
                raise RuntimeError("body failed")
        assert len(rec.samples) >= 2


def test_thread_runs_only_inside_the_with(tcp_pair, no_leaks):
    client, _ = tcp_pair
    before = threading.active_count()
    with sockdiag.record(client, interval=0.001):
        assert threading.active_count() == before + 1
    assert threading.active_count() == before


def test_closing_the_socket_mid_recording_ends_cleanly(no_leaks):
    client, server = connected_pair()
    with server:
        with sockdiag.record(client, interval=0.001) as rec:
            fill(client)
            time.sleep(0.01)
            fd = client.fileno()
            client.close()
            closed_at = time.monotonic()
            # The fd number is free again: a UDP socket takes it, and must
            # not show up in the recording (UDP samples have unacked None).
            others = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM)]
            try:
                while others[-1].fileno() != fd and len(others) < 64:
                    others.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                assert others[-1].fileno() == fd
                time.sleep(0.02)
            finally:
                for other in others:
                    other.close()
        assert rec.socket_closed and rec.error is None
        samples = rec.samples
        assert len(samples) >= 3
        assert all(s.unacked is not None for s in samples)
        # A sample finishing as the socket closes may be stamped just after.
        assert samples[-1].time_s < closed_at + 0.005


def test_closing_an_instrumented_socket_mid_recording(no_leaks):
    client, server = connected_pair()
    with server:
        with sockdiag.record(client, interval=None) as rec:
            rec.socket.send(b"x")
            rec.socket.close()
            with pytest.raises(OSError):
                rec.socket.send(b"x")
        assert client.fileno() == -1 and rec.socket_closed and rec.error is None
        assert len(rec.samples) == 2


def test_a_sampling_error_stops_the_recorder_and_raises_on_exit(no_leaks):
    with socket.socket() as sock:  # not connected yet: its buffer is empty but readable
        with pytest.raises(UnsuitableSocket, match="listening"):
            with sockdiag.record(sock, interval=0.001) as rec:
                sock.bind(("127.0.0.1", 0))
                sock.listen()  # a listening socket has no send buffer
                wait_until(lambda: rec.error is not None)
        assert len(rec.samples) >= 1 and not rec.socket_closed


def test_the_body_exception_wins_over_a_sampling_error(no_leaks):
    with socket.socket() as sock:
        with pytest.raises(RuntimeError, match="body failed"):
            with sockdiag.record(sock, interval=0.001) as rec:
                sock.bind(("127.0.0.1", 0))
                sock.listen()
                wait_until(lambda: rec.error is not None)
                raise RuntimeError("body failed")
        assert isinstance(rec.error, UnsuitableSocket)


# --- InstrumentedSocket behaves as the socket it wraps ---------------------------


@pytest.fixture(params=["plain", "instrumented"])
def sender(request, tcp_pair):
    """(socket to test, its peer): the same tests run on a plain and a wrapped socket."""
    client, server = tcp_pair
    if request.param == "plain":
        return client, server
    return InstrumentedSocket(client), server


def recorded(sock) -> int:
    return len(sock.recording.samples) if isinstance(sock, InstrumentedSocket) else 0


def test_send_family(sender):
    sock, peer = sender
    assert sock.send(b"abc") == 3
    assert sock.sendall(b"defg") is None
    assert sock.sendmsg([b"hi", b"jk"]) == 4
    received = b""
    peer.settimeout(5)
    while len(received) < 11:
        received += peer.recv(100)
    assert received == b"abcdefghijk"
    assert recorded(sock) in (0, 1 + 3)


@pytest.mark.parametrize("wrap", [False, True], ids=["plain", "instrumented"])
def test_sendto_on_udp(wrap, no_leaks):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        sock = InstrumentedSocket(udp) if wrap else udp
        assert sock.sendto(b"one", receiver.getsockname()) == 3
        assert sock.sendto(b"two", 0, receiver.getsockname()) == 3
        assert [receiver.recv(10), receiver.recv(10)] == [b"one", b"two"]
        assert recorded(sock) in (0, 1 + 2)


def test_sendfile(sender, tmp_path):
    sock, peer = sender
    path = tmp_path / "payload"
    path.write_bytes(b"z" * 100_000)
    with open(path, "rb") as f:
        assert sock.sendfile(f, 10) == 99_990
    drain(peer, 99_990)
    assert recorded(sock) in (0, 2)


def test_receive_family(sender):
    sock, peer = sender
    peer.sendall(b"0123456789")
    sock.settimeout(5)
    assert sock.recv(2) == b"01"
    buf = bytearray(2)
    assert sock.recv_into(buf) == 2 and buf == b"23"
    assert sock.recvfrom(2)[0] == b"45"
    assert sock.recvfrom_into(buf)[0] == 2 and buf == b"67"
    assert sock.recvmsg(2)[0] == b"89"
    assert recorded(sock) in (0, 1)  # receiving takes no sample


def test_options_timeouts_and_blocking(sender):
    sock, peer = sender
    sock.settimeout(0.25)
    assert sock.gettimeout() == 0.25
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0  # macOS says 4
    assert sock.getpeername() == peer.getsockname()
    assert sock.family == peer.family and sock.type == socket.SOCK_STREAM
    with pytest.raises(TimeoutError):
        sock.recv(1)
    sock.setblocking(False)
    assert sock.getblocking() is False
    with pytest.raises(BlockingIOError):
        while True:
            sock.send(b"x" * 65536)
    if isinstance(sock, InstrumentedSocket):
        # The send that raised was recorded too, at a full buffer.
        assert sock.recording.samples[-1].unsent > 0


def test_selectors_see_the_real_fd(sender):
    sock, peer = sender
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        assert selector.select(0) == []
        peer.send(b"x")
        events = selector.select(5)
        assert [key.fileobj for key, _ in events] == [sock]
        assert events[0][0].fd == sock.fileno() >= 0


def test_close_and_context_manager(sender):
    sock, _ = sender
    with sock as entered:
        assert entered is sock
    assert sock.fileno() == -1
    sock.close()  # twice is fine, as for a socket
    with pytest.raises(OSError):
        sock.send(b"x")


# --- asyncio ------------------------------------------------------------------------


async def stream_pair(reader_rcvbuf: int = 0):
    """(server writer, client reader) over loopback; the test decides who reads."""
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client_reader, client_writer = await asyncio.open_connection("127.0.0.1", port)
    _, server_writer = await accepted
    return server, server_writer, client_reader, client_writer


async def close_all(server, *writers):
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


def test_record_stream_samples_on_the_loop(no_leaks):
    async def main():
        server, writer, reader, client_writer = await stream_pair()
        threads = threading.active_count()
        async with sockdiag.record_stream(writer, interval=0.001, fields=("rtt_us",)) as rec:
            assert threading.active_count() == threads  # no thread: callbacks on the loop
            writer.write(b"x" * (8 << 20))
            await asyncio.sleep(0.05)
        await reader.readexactly(8 << 20)
        await close_all(server, writer, client_writer)
        return rec

    rec = asyncio.run(main())
    samples = rec.samples
    assert len(samples) >= 10
    assert max(s.unsent for s in samples) > 0
    assert all(s.rtt_us is not None for s in samples)


def test_record_stream_agrees_with_send_buffer_while_held(no_leaks):
    async def main():
        server, writer, reader, client_writer = await stream_pair()
        sock = writer.get_extra_info("socket")
        writer.write(b"x" * (16 << 20))  # more than the kernel takes: the reader is idle
        previous = None
        for _ in range(100):
            await asyncio.sleep(0.05)
            now = sockdiag.send_buffer(sock)
            if now == previous:
                break
            previous = now
        async with sockdiag.record_stream(writer.transport, interval=0.001) as rec:
            await asyncio.sleep(0.02)
        after = sockdiag.send_buffer(sock)
        await reader.readexactly(16 << 20)
        await close_all(server, writer, client_writer)
        return rec, previous, after

    rec, before, after = asyncio.run(main())
    if before == after:  # else the kernel moved meanwhile; nothing to compare
        assert {buffer_of(s) for s in rec.samples} == {buffer_of(before)}
    assert len(rec.samples) >= 5


def test_record_stream_ends_cleanly_when_the_transport_closes(no_leaks):
    async def main():
        server, writer, reader, client_writer = await stream_pair()
        async with sockdiag.record_stream(writer, interval=0.001) as rec:
            writer.write(b"x" * 1000)
            await asyncio.sleep(0.01)
            writer.close()
            await writer.wait_closed()
            await asyncio.sleep(0.01)
        await close_all(server, client_writer)
        return rec

    rec = asyncio.run(main())
    assert rec.socket_closed and rec.error is None and len(rec.samples) >= 2


def test_instrumented_socket_under_an_asyncio_transport(no_leaks):
    """open_connection(sock=InstrumentedSocket(...)): a sample per transport write."""
    async def main():
        accepted: asyncio.Future = asyncio.get_running_loop().create_future()
        server = await asyncio.start_server(lambda _, writer: accepted.set_result(writer), "127.0.0.1", 0)
        raw = socket.create_connection(server.sockets[0].getsockname()[:2])
        wrapped = InstrumentedSocket(raw)
        _, writer = await asyncio.open_connection(sock=wrapped)
        for _ in range(5):
            writer.write(b"x" * 1000)  # the buffer is empty: each goes straight to send()
            await writer.drain()
        await close_all(server, writer, await accepted)
        return wrapped.recording

    rec = asyncio.run(main())
    assert len(rec.samples) == 1 + 5


def test_record_stream_without_a_socket_is_a_clear_error():
    class NoSocket:
        def get_extra_info(self, name, default=None):
            return default

    async def main():
        async with sockdiag.record_stream(NoSocket()):
            pass

    with pytest.raises(UnsuitableSocket, match="no socket"):
        asyncio.run(main())
