"""Cost of recording: one sample, and a send through InstrumentedSocket.

Group "record sample" (per sample, on a full connection): the raw C floor of
its four syscalls, Recording.sample() (the sample and the drain across
samples), the sample alone (Linux: _fast.TcpSampler), the same Sample built
in Python from send_buffer() + tcp_info(), and those two calls alone.  Group "record send 64 B" (per send): 1,000 sends of 64 bytes per
round over loopback TCP with TCP_NODELAY, the peer drained between rounds
(not timed) so the buffer never fills; plain socket vs InstrumentedSocket.

Run: pytest bench/bench_record.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import ctypes
import socket

import pytest

import sockdiag

from testsupport.loopback import connected_pair

SAMPLES_PER_ROUND = 2_000
SENDS_PER_ROUND = 1_000
MESSAGE = b"x" * 64


@pytest.fixture
def pair():
    client, server = connected_pair()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.setblocking(False)
    yield client, server
    client.close()
    server.close()


def per_sample(benchmark, function, *args) -> float:
    """Median seconds per call, timed in batches."""
    benchmark.pedantic(function, args, iterations=SAMPLES_PER_ROUND, rounds=30, warmup_rounds=2)
    return benchmark.stats.stats.median


def per_send(benchmark, send, server: socket.socket) -> float:
    """Median seconds per send of MESSAGE, draining the peer between rounds."""
    def drain():
        try:
            while server.recv(1 << 20):
                pass
        except BlockingIOError:
            pass

    def sends():
        for _ in range(SENDS_PER_ROUND):
            send(MESSAGE)

    benchmark.pedantic(sends, setup=drain, rounds=200, warmup_rounds=5)
    return benchmark.stats.stats.median / SENDS_PER_ROUND


@pytest.mark.benchmark(group="record sample")
def test_sample_raw_c(benchmark, full_connection, raw_sockcalls, ratios):
    """Floor: SIOCOUTQNSD, SIOCOUTQ, SO_MEMINFO and TCP_INFO in a C loop."""
    fd = full_connection.fileno()
    for loop in (raw_sockcalls.raw_send_buffer_loop, raw_sockcalls.raw_tcp_info_loop):
        loop.restype = ctypes.c_double
    elapsed_ns = []

    def run():
        ns = (raw_sockcalls.raw_send_buffer_loop(fd, SAMPLES_PER_ROUND)
              + raw_sockcalls.raw_tcp_info_loop(fd, SAMPLES_PER_ROUND))
        assert ns > 0, "raw loop failed"
        elapsed_ns.append(ns)

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)
    median_ns = sorted(elapsed_ns)[len(elapsed_ns) // 2]
    ratios.add("record sample", "raw C loop (the four syscalls)", median_ns / SAMPLES_PER_ROUND / 1e9)


@pytest.mark.benchmark(group="record sample")
def test_sample_fast(benchmark, full_connection, ratios):
    rec = sockdiag.Recording(full_connection, capacity=1000)
    ratios.add("record sample", "Recording.sample(): the sample and the drain across samples", per_sample(benchmark, rec.sample))


@pytest.mark.benchmark(group="record sample")
def test_sample_alone(benchmark, full_connection, ratios):
    rec = sockdiag.Recording(full_connection, capacity=1000)
    ratios.add("record sample", "the sample alone (TcpSampler.take on Linux)",
               per_sample(benchmark, rec._take, full_connection.fileno()))


@pytest.mark.benchmark(group="record sample")
def test_sample_python_reference(benchmark, full_connection, ratios):
    rec = sockdiag.Recording(full_connection, capacity=1000)
    ratios.add("record sample", "Sample built in Python (reference)",
               per_sample(benchmark, rec._take_python, full_connection.fileno()))


@pytest.mark.benchmark(group="record sample")
def test_send_buffer_and_tcp_info(benchmark, full_connection, ratios):
    fd = full_connection.fileno()

    def calls():
        sockdiag.send_buffer(fd)
        sockdiag.tcp_info(fd)

    ratios.add("record sample", "send_buffer() + tcp_info() calls", per_sample(benchmark, calls))


@pytest.mark.benchmark(group="record send 64 B")
def test_send_plain_socket(benchmark, pair, ratios):
    client, server = pair
    ratios.add("record send 64 B", "socket.send", per_send(benchmark, client.send, server))


@pytest.mark.benchmark(group="record send 64 B")
def test_send_instrumented_socket(benchmark, pair, ratios):
    client, server = pair
    wrapped = sockdiag.InstrumentedSocket(client, capacity=1000)
    ratios.add("record send 64 B", "InstrumentedSocket.send", per_send(benchmark, wrapped.send, server))


@pytest.mark.benchmark(group="record send 64 B")
def test_send_instrumented_socket_with_fields(benchmark, pair, ratios):
    client, server = pair
    wrapped = sockdiag.InstrumentedSocket(client, fields=("rtt_us", "snd_cwnd_segs"), capacity=1000)
    ratios.add("record send 64 B", "InstrumentedSocket.send, 2 TCP_INFO fields",
               per_send(benchmark, wrapped.send, server))
