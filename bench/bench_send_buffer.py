"""send_buffer and tcp_info: Cython vs the raw C loop vs the pure-Python reference.

Run: pytest bench/bench_send_buffer.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import ctypes

import pytest

import sockdiag
from sockdiag import reference

from testsupport.benchmarks import per_call

CALLS_PER_ROUND = 20_000
# Batches of calls for per_call: the timer's own cost is spread over them.
BATCH = {"iterations": CALLS_PER_ROUND // 10, "rounds": 30}


def raw_per_call(benchmark, loop, fd) -> float:
    loop.restype = ctypes.c_double
    elapsed_ns = []

    def run():
        ns = loop(fd, CALLS_PER_ROUND)
        assert ns > 0, "raw loop failed"
        elapsed_ns.append(ns)

    benchmark.pedantic(run, rounds=30, warmup_rounds=2)
    return sorted(elapsed_ns)[len(elapsed_ns) // 2] / CALLS_PER_ROUND / 1e9


@pytest.mark.benchmark(group="send_buffer")
def test_send_buffer_raw_c(benchmark, full_connection, raw_sockcalls, ratios):
    ratios.add("send_buffer", "raw C loop (ioctl x2 + SO_MEMINFO)",
               raw_per_call(benchmark, raw_sockcalls.raw_send_buffer_loop, full_connection.fileno()))


@pytest.mark.benchmark(group="send_buffer")
def test_send_buffer_cython(benchmark, full_connection, ratios):
    ratios.add("send_buffer", "sockdiag.send_buffer (Cython)", per_call(benchmark, sockdiag.send_buffer, full_connection, **BATCH))


@pytest.mark.benchmark(group="send_buffer")
def test_send_buffer_reference(benchmark, full_connection, ratios):
    ratios.add("send_buffer", "pure-Python reference (fcntl/getsockopt)", per_call(benchmark, reference.send_buffer, full_connection, **BATCH))


@pytest.mark.benchmark(group="tcp_info")
def test_tcp_info_raw_c(benchmark, full_connection, raw_sockcalls, ratios):
    ratios.add("tcp_info", "raw C loop (getsockopt TCP_INFO)",
               raw_per_call(benchmark, raw_sockcalls.raw_tcp_info_loop, full_connection.fileno()))


@pytest.mark.benchmark(group="tcp_info")
def test_tcp_info_cython(benchmark, full_connection, ratios):
    ratios.add("tcp_info", "sockdiag.tcp_info (Cython, 78 fields)", per_call(benchmark, sockdiag.tcp_info, full_connection, **BATCH))


@pytest.mark.benchmark(group="tcp_info")
def test_tcp_info_reference(benchmark, full_connection, ratios):
    ratios.add("tcp_info", "pure-Python reference (struct)", per_call(benchmark, reference.tcp_info, full_connection, **BATCH))
