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


# Each group's rows as the ratio table shows them: the raw C loop first (the floor).
RAW_C = {"send_buffer": "raw C loop (ioctl x2 + SO_MEMINFO)", "tcp_info": "raw C loop (getsockopt TCP_INFO)"}
PYTHON_CALLS = {"send_buffer": [(sockdiag.send_buffer, "sockdiag.send_buffer (Cython)"),
                                (reference.send_buffer, "pure-Python reference (fcntl/getsockopt)")],
                "tcp_info": [(sockdiag.tcp_info, "sockdiag.tcp_info (Cython, 78 fields)"),
                             (reference.tcp_info, "pure-Python reference (struct)")]}


def in_its_group(group: str, *values, shown_as: str):
    return pytest.param(group, *values, marks=pytest.mark.benchmark(group=group), id=shown_as)


@pytest.mark.parametrize("group, label", [in_its_group(group, label, shown_as=group) for group, label in RAW_C.items()])
def test_raw_c(benchmark, full_connection, raw_sockcalls, ratios, group, label):
    loop = getattr(raw_sockcalls, f"raw_{group}_loop")
    ratios.add(group, label, raw_per_call(benchmark, loop, full_connection.fileno()))


@pytest.mark.parametrize("group, function, label", [in_its_group(group, function, label, shown_as=label)
                                                    for group, calls in PYTHON_CALLS.items()
                                                    for function, label in calls])
def test_python_call(benchmark, full_connection, ratios, group, function, label):
    ratios.add(group, label, per_call(benchmark, function, full_connection, **BATCH))
