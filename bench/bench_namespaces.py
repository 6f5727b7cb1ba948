"""What `sockdiag top` pays to cover 20 network namespaces holding processes.

    pytest bench/bench_namespaces.py -s

One TrafficAccountant.sample() (every process, run from the host's
namespace) before and after 20 namespaces of the bench's own each get a
process holding 10 loopback connections: each namespace costs one dump of
its sockets and one subscription to its destroy notifications, plus a stat
of every process's /proc/<pid>/ns/net per sample.

The dump of a namespace holding 20 sockets is not cheap: the kernel keeps
one TCP hash table for the whole machine (unless net.ipv4.tcp_child_ehash_entries
gives a namespace its own) and a dump walks all of it, skipping the other
namespaces' sockets; ``ss -N <namespace> -tan`` pays the same.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid

import pytest

from sockdiag._linux import initial_network_namespace
from sockdiag.accounting import TrafficAccountant
from sockdiag._linux import network_namespace

NAMESPACES = 20
CONNECTIONS = 10

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0
    or initial_network_namespace() != network_namespace(os.getpid()),
    reason="needs Linux, root and the host's network namespace")

HOLDER = """
import socket, sys
listener = socket.create_server(("127.0.0.1", 0))
held = []
for _ in range(int(sys.argv[1])):
    held.append(socket.create_connection(listener.getsockname()))
    held.append(listener.accept()[0])
print("ready", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def namespaces(count: int):
    names, children = [], []
    try:
        for _ in range(count):
            name = f"sdbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
            subprocess.run(["ip", "netns", "add", name], check=True)
            names.append(name)
            subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
            child = subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", HOLDER,
                                      str(CONNECTIONS)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
            children.append(child)
            assert child.stdout.readline() == "ready\n"
        yield
    finally:
        for child in children:
            child.stdin.close()
            child.wait(timeout=30)
        for name in names:
            subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.parametrize("count", [0, NAMESPACES], ids=["own namespace only", f"{NAMESPACES} namespaces"])
def test_top_sample(benchmark, ratios, count):
    with namespaces(count), TrafficAccountant(trace_connects=False) as accountant:
        sample = benchmark.pedantic(accountant.sample, rounds=15, warmup_rounds=1)
        assert sum(row.connections for row in sample.processes) >= 2 * CONNECTIONS * count
    ratios.add("top sample, every process", f"with {count} other namespaces", benchmark.stats.stats.median)
