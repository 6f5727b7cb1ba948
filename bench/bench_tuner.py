"""What sockdiag.LowatTuner costs: µs per update, and updates per MB written.

Floor: the two syscalls an update needs, made bare from Python
(getsockopt(TCP_INFO) into bytes and setsockopt(TCP_NOTSENT_LOWAT)).
Then ``update()`` (TCP_INFO decoded into a TcpInfo, the rate, the band
test; setsockopt only when the limit moves) and ``maybe_update()`` between
updates (a clock read).  Updates per MB depend on the rate: at most one
per ``interval_s`` (50 ms), so 20 per second whatever is written; the
figure below is for a writer held to 10 Mbit/s by its reader.

Run: pytest bench/bench_tuner.py -s   (the ratio table prints at the end)
"""

from __future__ import annotations

import socket
import time

import sockdiag

from bench_lowat import per_call
from testsupport.loopback import PacedReader, ethernet_like_pair

TCP_INFO_BYTES = 280
TCP_NOTSENT_LOWAT = 25


def bare_pair(sock: socket.socket) -> None:
    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_BYTES)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, 16384)


def test_bare_getsockopt_setsockopt(benchmark, full_connection, ratios):
    ratios.add("LowatTuner, one socket", "bare getsockopt(TCP_INFO) + setsockopt",
               per_call(benchmark, bare_pair, full_connection))


def test_update(benchmark, full_connection, ratios):
    tuner = sockdiag.LowatTuner(full_connection, target_ms=20)
    ratios.add("LowatTuner, one socket", "LowatTuner.update()",
               per_call(benchmark, tuner.update))
    sockdiag.set_notsent_lowat(full_connection, None)


def test_maybe_update_between_updates(benchmark, full_connection, ratios):
    tuner = sockdiag.LowatTuner(full_connection, target_ms=20, interval_s=3600)
    tuner.update()
    ratios.add("LowatTuner, one socket", "LowatTuner.maybe_update(), not due",
               per_call(benchmark, tuner.maybe_update))
    sockdiag.set_notsent_lowat(full_connection, None)


def test_updates_per_mb_at_10_mbit(benchmark):
    """A bulk writer calling maybe_update() after every send, its reader taking 10 Mbit/s."""
    writer, reader = ethernet_like_pair(rcvbuf=16 * 1024)
    pacer = PacedReader(reader)
    pacer.rate = 10e6 / 8
    pacer.start()
    tuner = sockdiag.LowatTuner(writer, target_ms=20)
    writer.setblocking(False)
    chunk = b"x" * 16384
    written = 0

    def write_for_two_seconds() -> None:
        nonlocal written
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                written += writer.send(chunk)
            except BlockingIOError:
                time.sleep(0.0005)
            tuner.maybe_update()

    benchmark.pedantic(write_for_two_seconds, rounds=1, iterations=1)
    pacer.stopped.set()
    writer.close()
    reader.close()
    pacer.join(2)
    per_mb = tuner.updates / (written / 1e6)
    benchmark.extra_info.update(updates=tuner.updates, changes=tuner.changes,
                                megabytes=written / 1e6, updates_per_mb=per_mb)
    print(f"\nLowatTuner at 10 Mbit/s: {tuner.updates} updates ({tuner.changes} changed the "
          f"limit) for {written / 1e6:.2f} MB: {per_mb:.1f} updates per MB; "
          f"lowat {tuner.lowat_bytes} bytes")
    assert per_mb < 25
