"""Per-process accounting (`sockdiag top`): one sample of every TCP socket, attributed.

A child process holds CONNECTIONS loopback connections (2 sockets each).
Groups:
  top sample  - the C floor (dump + fd scan, no attribution), a whole
                TrafficAccountant.sample() when no new connection moved bytes
                (no fd scan) and when one did (a full scan), and `ss -tinpH`
                (the peer that gives per-process sockets with byte counters)
  fd scan     - socket inode -> pid over every /proc/<pid>/fd: C vs pure Python

Run: pytest bench/bench_top.py   (the ratio table prints at the end)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys

import pytest

from sockdiag import _fast
from sockdiag.accounting import TrafficAccountant

CONNECTIONS = 2000

HOLDER = """
import socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
held = []
for _ in range(int(sys.argv[1])):
    held.append(socket.create_connection(listener.getsockname()))
    held.append(listener.accept()[0])
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.fixture(scope="module")
def many_sockets():
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(CONNECTIONS)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    yield child.pid
    child.communicate("")


def median(benchmark, function, rounds=15) -> float:
    benchmark.pedantic(function, rounds=rounds, warmup_rounds=1)
    return benchmark.stats.stats.median


def python_socket_owners() -> dict[int, int]:
    """The pure-Python equivalent of _fast.socket_owners()."""
    owners: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{name}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(int(target[8:-1]), int(name))
    return owners


@pytest.mark.benchmark(group="top sample")
def test_floor_dump_and_scan(benchmark, many_sockets, ratios):
    def floor():
        _fast.tcp_counters()
        _fast.socket_owners()

    ratios.add("top sample", f"C floor: dump + fd scan ({2 * CONNECTIONS}+ sockets)", median(benchmark, floor))


@pytest.mark.benchmark(group="top sample")
def test_accountant_sample(benchmark, many_sockets, ratios):
    """No new connection with traffic between samples: no fd scan."""
    with TrafficAccountant() as accountant:
        ratios.add("top sample", "TrafficAccountant.sample(), steady", median(benchmark, accountant.sample))


@pytest.mark.benchmark(group="top sample")
def test_accountant_sample_with_new_connections(benchmark, many_sockets, ratios):
    """Each sample sees a new connection that moved bytes: its owner needs a full fd scan."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []

    def sample_after_a_new_connection():
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        client.sendall(b"x")
        server.recv(1)
        held.extend((client, server))
        accountant.sample()

    with TrafficAccountant() as accountant:
        ratios.add("top sample", "TrafficAccountant.sample(), new connections",
                   median(benchmark, sample_after_a_new_connection))
    for sock in held + [listener]:
        sock.close()


@pytest.mark.benchmark(group="top sample")
def test_ss_tinp(benchmark, many_sockets, ratios):
    if shutil.which("ss") is None:
        pytest.skip("needs ss")

    def ss():
        subprocess.run(["ss", "-tinpH"], stdout=subprocess.DEVNULL, check=True)

    ratios.add("top sample", "ss -tinpH (peer, output discarded)", median(benchmark, ss, rounds=5))


@pytest.mark.benchmark(group="fd scan")
def test_scan_c(benchmark, many_sockets, ratios):
    ratios.add("fd scan", "_fast.socket_owners() (C readlinkat)", median(benchmark, _fast.socket_owners))


@pytest.mark.benchmark(group="fd scan")
def test_scan_python(benchmark, many_sockets, ratios):
    child = many_sockets
    assert (sum(pid == child for pid in python_socket_owners().values())
            == sum(pid == child for pid in _fast.socket_owners()[0].values()) >= 2 * CONNECTIONS)
    ratios.add("fd scan", "pure Python listdir + readlink", median(benchmark, python_socket_owners))
