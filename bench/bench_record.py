"""Cost of recording: a send through InstrumentedSocket against a plain send.

Each round sends 1,000 small messages over loopback TCP; the peer's socket is
drained between rounds (not timed) so the buffer never fills.  Per-send
figures are the round's time / 1,000.  Run: pytest bench/bench_record.py
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

import sockdiag

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import connected_pair  # noqa: E402

SENDS_PER_ROUND = 1000
MESSAGE = b"x" * 64


@pytest.fixture
def pair():
    client, server = connected_pair()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.setblocking(False)
    yield client, server
    client.close()
    server.close()


def drain(server: socket.socket) -> None:
    try:
        while server.recv(1 << 20):
            pass
    except BlockingIOError:
        pass


def run_rounds(benchmark, send, server) -> None:
    def sends():
        for _ in range(SENDS_PER_ROUND):
            send(MESSAGE)

    benchmark.extra_info["sends_per_round"] = SENDS_PER_ROUND
    benchmark.pedantic(sends, setup=lambda: drain(server), rounds=200, iterations=1, warmup_rounds=5)


def test_send_plain_socket(benchmark, pair):
    """Baseline: socket.send of 64 bytes."""
    client, server = pair
    run_rounds(benchmark, client.send, server)


def test_send_instrumented_socket(benchmark, pair):
    """InstrumentedSocket.send of 64 bytes: the send plus one sample."""
    client, server = pair
    wrapped = sockdiag.InstrumentedSocket(client, capacity=1000)
    run_rounds(benchmark, wrapped.send, server)


def test_send_instrumented_socket_with_fields(benchmark, pair):
    """As above, each sample also carrying rtt_us and snd_cwnd_segs."""
    client, server = pair
    wrapped = sockdiag.InstrumentedSocket(client, fields=("rtt_us", "snd_cwnd_segs"), capacity=1000)
    run_rounds(benchmark, wrapped.send, server)


def test_one_sample(benchmark, pair):
    """Recording.sample() alone: what a send through InstrumentedSocket adds
    (Linux: _fast.TcpSampler, four syscalls filling the Sample's slots)."""
    client, _ = pair
    rec = sockdiag.InstrumentedSocket(client, capacity=1000).recording
    benchmark(rec.sample)


def test_one_sample_python_reference(benchmark, pair):
    """Baseline: the same Sample built in Python from send_buffer() + tcp_info()."""
    client, _ = pair
    rec = sockdiag.InstrumentedSocket(client, capacity=1000).recording
    benchmark(rec._take_python, client.fileno())


def test_send_buffer_and_tcp_info(benchmark, pair):
    """Baseline: the two public calls a hand-written sampler would make."""
    client, _ = pair
    fd = client.fileno()

    def syscalls():
        sockdiag.send_buffer(fd)
        sockdiag.tcp_info(fd)

    benchmark(syscalls)
