"""How close the queue delay comes to the measured truth: a steady reader, a bottleneck.

    pytest bench/bench_queue_delay.py -s

Each case runs real connections three times and prints, per run, the queue
delay sockdiag gave at its last look (the drain across 16 looks 0.25 s
apart) beside the measured wait of the last byte written then (until
tcpi_bytes_acked passed its offset, read through Python's own getsockopt),
and unsent over the rate the reader or the bottleneck really takes:
  * a Python reader draining at 1 MB/s over loopback;
  * a 10 Mbit/s TBF between this namespace and one of the bench's own (root).
The tests in tests/test_queue_delay.py hold each within 25 %; this prints
the figures.
"""

from __future__ import annotations

import os

import pytest

from testsupport.queue_delay import bottleneck_case, steady_reader_case

RUNS = 3


def report(case: str, estimate, truth: float, expected: float) -> None:
    print(f"\n{case}: estimate {estimate.queue_delay_s:.3f} s ({estimate.queue_delay_basis}, "
          f"limited by {estimate.limited_by}), measured {truth:.3f} s, unsent over the real rate "
          f"{expected:.3f} s, off by {100 * (estimate.queue_delay_s - truth) / truth:+.1f} %")


@pytest.mark.parametrize("run", range(RUNS))
def test_steady_reader(run):
    estimate, truth = steady_reader_case(1_000_000)
    report("a reader taking 1 MB/s", estimate, truth, estimate.unsent / 1e6)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a namespace and a qdisc")
@pytest.mark.parametrize("run", range(RUNS))
def test_bottleneck(run):
    estimate, truth, _ = bottleneck_case()
    report("a 10 Mbit/s bottleneck", estimate, truth, estimate.unsent / 1.25e6)
