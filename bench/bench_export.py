"""One scrape of `sockdiag export` vs process_sockets itself, on ~19,000 sockets.

A child process holds 9,500 loopback connections (both ends: 19,000 TCP
sockets, bench_process_sockets's fixture); the scrape must cost about what
reading its sockets costs.

Run: pytest bench/bench_export.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import statistics
import time

import pytest

pytest.importorskip("prometheus_client")

import sockdiag  # noqa: E402
from sockdiag import export, exposition  # noqa: E402

from bench_process_sockets import CONNECTIONS, holder  # noqa: E402

from testsupport.benchmarks import per_call


@pytest.fixture(scope="module")
def busy_pid():
    """pid of a process holding CONNECTIONS loopback connections."""
    with holder(CONNECTIONS) as (pid, _):
        yield pid


GROUP = f"export, one process with {2 * CONNECTIONS} sockets"


@pytest.mark.benchmark(group="export")
def test_process_sockets(benchmark, busy_pid, ratios):
    assert len(sockdiag.process_sockets(busy_pid)) >= 2 * CONNECTIONS
    ratios.add(GROUP, "sockdiag.process_sockets(pid)", per_call(benchmark, sockdiag.process_sockets, busy_pid, rounds=15))


@pytest.mark.benchmark(group="export")
def test_aggregation_alone(benchmark, busy_pid, ratios):
    read = [(str(busy_pid), "python3", sockdiag.process_sockets(busy_pid), {})]
    ratios.add(GROUP, "aggregation alone (process_families)",
               per_call(benchmark, export.process_families, read, rounds=15))


@pytest.mark.benchmark(group="export")
def test_interleaved_ratio(benchmark, busy_pid, ratios):
    """One scrape (with and without --per-socket) against process_sockets,
    alternated call by call: a load that drifts on a shared machine hits them
    alike, so these ratios are the ones to quote."""
    scrape = export.registry(export.Collector([busy_pid]))
    scrape_per_socket = export.registry(
        export.Collector([busy_pid], per_socket=True, max_series=1000))
    calls = {
        "sockdiag.process_sockets(pid)": lambda: sockdiag.process_sockets(busy_pid),
        # What /metrics serves (export.serve): the registry's families in export's text format.
        "one scrape (exposition of /metrics)": lambda: exposition.text_format(scrape.collect()),
        "one scrape, --per-socket --max-series 1000":
            lambda: exposition.text_format(scrape_per_socket.collect()),
    }
    seconds: dict[str, list[float]] = {name: [] for name in calls}

    def each_once():
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)

    benchmark.pedantic(each_once, rounds=21, warmup_rounds=2)
    for name, times in seconds.items():
        ratios.add(f"{GROUP}, interleaved", name, statistics.median(times))
