"""What the drain across looks costs a view: DrainTracker.update beside the dump it refines.

    pytest bench/bench_drain.py

This process holds 4,000 loopback connections (8,000 sockets); every tenth
writer has filled a 64 KiB send buffer its reader does not read (bytes wait,
the peer's window is closed), the rest are idle, as on a busy server.
Group "drain, 8,000 sockets" (per look):
  * process_sockets of this process: the dump and fd scan (C), whose structs
    already carry one look's verdict (sd_snapshot_drain, in C);
  * DrainTracker.update of those structs, at its second look and later (the
    cost a live view adds per refresh);
  * the pure-Python twin of the one-look rule (_common.snapshot_drain) over
    the same structs, what the C rule saves.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

import sockdiag
from sockdiag._common import snapshot_drain
from sockdiag.drain import DrainTracker
from testsupport.benchmarks import per_call
from testsupport.loopback import fill

CONNECTIONS = 4_000
WAITING_EVERY = 10


@pytest.fixture(scope="module")
def busy():
    listener = socket.create_server(("127.0.0.1", 0), backlog=CONNECTIONS)
    pairs = []
    try:
        for n in range(CONNECTIONS):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 << 10)
            client.connect(listener.getsockname())
            pairs.append((client, listener.accept()[0]))
            if n % WAITING_EVERY == 0:
                fill(client)
        time.sleep(0.5)
        yield sockdiag.process_sockets(os.getpid())
    finally:
        for client, server in pairs:
            client.close()
            server.close()
        listener.close()


MEASURES = ("process_sockets (C dump, one look's rule)", "DrainTracker.update, a later look",
            "snapshot_drain (Python twin) of every socket")


@pytest.mark.parametrize("measure", MEASURES)
def test_drain_per_look(benchmark, busy, ratios, measure):
    group = f"drain, {len(busy):,} sockets ({sum(1 for s in busy if s.unsent):,} with bytes waiting)"
    if measure == MEASURES[0]:
        figure = per_call(benchmark, sockdiag.process_sockets, os.getpid(), rounds=10)
    elif measure == MEASURES[1]:
        tracker = DrainTracker()
        tracker.update(busy, time.monotonic())
        looks = iter(range(1, 10**9))
        figure = per_call(benchmark, lambda: tracker.update(busy, time.monotonic() + next(looks)))
    else:
        figure = per_call(benchmark, lambda: [snapshot_drain(s.unsent, s.unacked, s.free, s.tcp)
                                              for s in busy])
    ratios.add(group, measure, figure)
