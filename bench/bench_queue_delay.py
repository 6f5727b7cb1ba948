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
import socket
import subprocess
import sys

import pytest

from sockdiag.drain import DrainTracker
from testsupport.loopback import PacedReader, ethernet_like_pair
from testsupport.queue_delay import NAMESPACE, Writer, estimate_and_truth, shaped_peer

RUNS = 3


def report(case: str, estimate, truth: float, expected: float) -> None:
    print(f"\n{case}: estimate {estimate.queue_delay_s:.3f} s ({estimate.queue_delay_basis}, "
          f"limited by {estimate.limited_by}), measured {truth:.3f} s, unsent over the real rate "
          f"{expected:.3f} s, off by {100 * (estimate.queue_delay_s - truth) / truth:+.1f} %")


@pytest.mark.parametrize("run", range(RUNS))
def test_steady_reader(run):
    client, server = ethernet_like_pair(rcvbuf=64 * 1024)
    with client, server:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        reader = PacedReader(server)
        reader.rate = 1_000_000
        reader.start()
        writer = Writer(client)
        writer.start()
        try:
            estimate, truth = estimate_and_truth(client, writer, DrainTracker(), 16)
        finally:
            reader.stopped.set()
    report("a reader taking 1 MB/s", estimate, truth, estimate.unsent / 1e6)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a namespace and a qdisc")
@pytest.mark.parametrize("run", range(RUNS))
def test_bottleneck(run):
    with shaped_peer() as peer:
        reader = subprocess.Popen(
            ["ip", "netns", "exec", NAMESPACE, sys.executable, "-c",
             "import socket\nl = socket.create_server(('%s', 5001))\nprint(flush=True)\nc, _ = l.accept()\n"
             "while c.recv(1 << 20): pass" % peer], stdout=subprocess.PIPE, text=True)
        try:
            reader.stdout.readline()
            with socket.create_connection((peer, 5001), timeout=5) as client:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                writer = Writer(client)
                writer.start()
                estimate, truth = estimate_and_truth(client, writer, DrainTracker(), 16)
        finally:
            reader.kill()
            reader.wait()
    report("a 10 Mbit/s bottleneck", estimate, truth, estimate.unsent / 1.25e6)
