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

import json
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


# --- the connect tracer under load ---------------------------------------------

TRACE_LOAD_PER_S = 5000
TRACE_LOAD_S = 8
# In a network namespace of its own: a server accepting and closing, two
# client processes opening TRACE_LOAD_PER_S short connections a second
# between them (100 bytes each), and `sockdiag top --json` sampling every
# second, once with the connect tracer and once without; top's CPU time from
# its rusage.
TRACE_SCENARIO = """
import json, os, resource, socket, subprocess, sys, threading, time
rate, seconds, top_command = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
port = listener.getsockname()[1]
def serve():
    while True:
        conn, _ = listener.accept()
        conn.close()
threading.Thread(target=serve, daemon=True).start()
CLIENT = '''
import socket, struct, sys, time
port, rate, seconds = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
linger = struct.pack("ii", 1, 0)
started, n = time.monotonic(), 0
while time.monotonic() - started < seconds:
    conn = socket.create_connection(("127.0.0.1", port))
    conn.send(b"x" * 100)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    conn.close()
    n += 1
    time.sleep(max(0.0, started + n / rate - time.monotonic()))
print(n)
'''
result = {}
for mode in ("--no-trace-connects", "--trace-connects"):
    top = subprocess.Popen([*top_command, mode], stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    clients = [subprocess.Popen([sys.executable, "-c", CLIENT, str(port), str(rate / 2), str(seconds)],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    opened = sum(int(c.communicate()[0]) for c in clients)
    top.send_signal(2)
    _, status, usage = os.wait4(top.pid, 0)
    result[mode] = {"cpu_s": usage.ru_utime + usage.ru_stime, "connections": opened}
print(json.dumps(result))
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root (the connect tracepoint, a network namespace)")
def test_connect_tracer_overhead(benchmark, ratios):
    top = [sys.executable, "-c", "from sockdiag.cli import main; main()", "top", "--json",
           "--interval", "1"]
    command = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
               sys.executable, "-c", TRACE_SCENARIO, str(TRACE_LOAD_PER_S), str(TRACE_LOAD_S), *top]
    outcome = {}

    def run():
        out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
        outcome.update(json.loads(out.stdout))

    benchmark.pedantic(run, rounds=1, iterations=1)
    off, on = outcome["--no-trace-connects"], outcome["--trace-connects"]
    group = f"top under {TRACE_LOAD_PER_S:,} short connections/s ({TRACE_LOAD_S} s, CPU per second)"
    ratios.add(group, "top --no-trace-connects", off["cpu_s"] / TRACE_LOAD_S)
    ratios.add(group, "top --trace-connects", on["cpu_s"] / TRACE_LOAD_S)
    per_connection = (on["cpu_s"] - off["cpu_s"]) / on["connections"]
    ratios.add("connect tracer", "top's extra CPU per traced connection", per_connection)
    print(f"\nconnect tracer: {on['connections'] / TRACE_LOAD_S:,.0f} connections/s; top CPU "
          f"{off['cpu_s']:.2f} s without, {on['cpu_s']:.2f} s with; "
          f"{per_connection * 1e6:.1f} us per traced connection")
