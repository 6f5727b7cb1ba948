"""LowatTuner: TCP_NOTSENT_LOWAT kept at rate × target on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

import sockdiag
from sockdiag import LowatTuner
from sockdiag._common import TcpInfo
from sockdiag.tuner import _acked_bytes, _has_queued_bytes

from conftest import requires_linux
from testsupport.loopback import PacedReader, connected_pair, ethernet_like_pair

MiB = 1 << 20


def write_for(sock: socket.socket, tuner: LowatTuner, seconds: float, trace: list) -> None:
    """Write as fast as the socket takes it, calling maybe_update between writes."""
    chunk = b"x" * 16384
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.send(chunk)
        except BlockingIOError:
            time.sleep(0.0005)
        before = tuner.updates
        lowat = tuner.maybe_update()
        if tuner.updates != before:
            trace.append((tuner.updates, lowat, tuner.rate_bytes_per_s))


@requires_linux
def test_lowat_follows_a_reader_slowing_to_1_mb_per_s():
    client, server = ethernet_like_pair(rcvbuf=16 * 1024)
    client.setblocking(False)
    reader = PacedReader(server)
    reader.start()
    try:
        tuner = LowatTuner(client, target_ms=20, min_bytes=4096, max_bytes=4 * MiB)
        fast: list = []
        write_for(client, tuner, 0.5, fast)
        # Loopback drains a hundred MB/s or more: 20 ms of it is megabytes.
        assert tuner.lowat_bytes > MiB, fast
        assert sockdiag.get_notsent_lowat(client) == tuner.lowat_bytes
        reader.rate = 1e6
        slow: list = []
        write_for(client, tuner, 2.0, slow)
        # 1 MB/s × 20 ms = 20 kB (the reader's pacing makes it a little less).
        near = range(15_000, 26_000)
        assert tuner.lowat_bytes in near, slow
        assert sockdiag.get_notsent_lowat(client) == tuner.lowat_bytes
        followed = next(i for i, (_, lowat, _) in enumerate(slow) if lowat in near)
        assert followed <= 6, slow  # the rate is an average over 4 updates
        settled = slow[followed:]
        assert sum(lowat in near for _, lowat, _ in settled) >= 0.9 * len(settled), settled
        # Hysteresis: a steady rate rarely changes the limit.
        changes = sum(a[1] != b[1] for a, b in zip(settled, settled[1:]))
        assert changes <= len(settled) // 5, settled
    finally:
        reader.stopped.set()
        client.close()
        server.close()
        reader.join(2)


@requires_linux
def test_hysteresis_and_bounds():
    client, server = connected_pair()
    try:
        tuner = LowatTuner(client, target_ms=10, min_bytes=8192, max_bytes=65536)
        assert tuner.lowat_bytes == 8192 == sockdiag.get_notsent_lowat(client)
        assert tuner.wanted_bytes(0) == 8192
        assert tuner.wanted_bytes(1e6) == 10_000
        assert tuner.wanted_bytes(1e9) == 65536
        # An idle socket: nothing acknowledged, nothing queued; the limit stays.
        for _ in range(3):
            assert tuner.update() == 8192
        assert tuner.rate_bytes_per_s is None and tuner.changes == 0
        assert "8192 bytes" in repr(tuner)
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("kwargs", [
    {"target_ms": 0}, {"min_bytes": 0}, {"min_bytes": 10, "max_bytes": 5},
    {"max_bytes": 1 << 31}, {"interval_s": 0}, {"tolerance": -1},
])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        LowatTuner(None, **kwargs)


@requires_linux
def test_not_a_tcp_socket():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(sockdiag.UnsuitableSocket):
            LowatTuner(udp)


def test_rate_source_per_platform():
    """Linux gives bytes_acked; macOS's private struct gives it derived; the
    public struct alone gives txbytes - retransmitted."""
    assert _acked_bytes(TcpInfo(bytes_acked=10, bytes_sent=99, bytes_retrans=1)) == 10
    assert _acked_bytes(TcpInfo(bytes_sent=100, bytes_retrans=5)) == 95
    assert _acked_bytes(TcpInfo()) is None
    assert _has_queued_bytes(TcpInfo(notsent_bytes=0, unacked_segs=2))
    assert not _has_queued_bytes(TcpInfo(notsent_bytes=0, unacked_segs=0))
    assert _has_queued_bytes(TcpInfo(send_buffer_bytes=1))
    assert not _has_queued_bytes(TcpInfo(send_buffer_bytes=0))


@requires_linux
def test_instrumented_socket_updates_after_sends():
    client, server = connected_pair()
    try:
        isock = sockdiag.InstrumentedSocket(client)
        tuner = LowatTuner(isock, target_ms=20, interval_s=1e-6)
        for _ in range(5):
            isock.send(b"x" * 1000)
            time.sleep(0.001)
        assert tuner.updates >= 5
        assert isock.after_send == tuner.maybe_update
        assert len(isock.recording.samples) >= 6
    finally:
        client.close()
        server.close()


@requires_linux
def test_asyncio_stream():
    async def main():
        received = asyncio.Event()

        async def handle(reader, writer):
            await reader.read(1 << 20)
            received.set()
            await asyncio.sleep(0.2)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        tuner = LowatTuner(writer, target_ms=20, interval_s=0.01)
        tuner.start()
        writer.write(b"x" * 65536)
        await writer.drain()
        await asyncio.sleep(0.1)
        tuner.stop()
        updates = tuner.updates
        await asyncio.sleep(0.05)
        writer.close()
        server.close()
        await server.wait_closed()
        return updates, tuner.updates

    updates, later = asyncio.run(main())
    assert updates >= 3
    assert later == updates  # stop() stopped them
