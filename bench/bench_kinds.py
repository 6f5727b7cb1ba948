"""A machine-wide read of 100,000 UDP and of 100,000 UNIX sockets, against ss.

    pytest bench/bench_kinds.py -s

A network namespace of the bench's own holds the sockets, so that the dump
is of them alone: six holder processes of 16,668 sockets each (UDP bound
to 127.0.0.1-4, UNIX as socket pairs).  Timed, per kind:
  * sockdiag's read of every socket of the namespace into SocketInfo structs
    (_fast.namespace_sockets_linux, the dump process_sockets takes);
  * the pure-Python twin (reference.py) of the same dump and decoding;
  * ``ss -uam`` / ``ss -xam`` in the namespace (``ss -N``), output to /dev/null;
  * process_sockets of one holder (its 16,668 fds scanned beside the dump).
The ratios print at the end (-s) and go to the benchmark JSON's extra_info.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import socket
import subprocess
import sys
import uuid

import pytest

import sockdiag
from sockdiag import _fast, reference
from sockdiag._common import kind_mask

HOLDERS = 6
PER_HOLDER = 16_668  # sockets per process (fds stay under 20,000): 100,008 in all
ALL_STATES = 0xFFFFFFFF
MEDIANS: dict[tuple[str, str], float] = {}
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """This thread into the network namespace of fd (os.setns is Python 3.12+)."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0,
    reason="needs Linux and root (a network namespace of its own)")


def hold(kind: str, count: int, first_address: int) -> None:
    """Child process: hold count sockets of kind until stdin closes."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (count + 64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = []
    if kind == "udp":
        for i in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((f"127.0.0.{first_address + i % 4}", 0))
            held.append(sock)
    else:
        for _ in range(count // 2):
            held += socket.socketpair()
    print(len(held), flush=True)
    sys.stdin.read()


@contextlib.contextmanager
def namespace_with(kind: str):
    """(namespace name, pid of a holder) with HOLDERS * PER_HOLDER sockets of kind."""
    name = f"sdbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    children = []
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", name, "sysctl", "-qw",
                        "net.ipv4.ip_local_port_range=1024 65535"], check=True)
        for _ in range(HOLDERS):
            child = subprocess.Popen(
                ["ip", "netns", "exec", name, sys.executable, __file__, kind, str(PER_HOLDER), "1"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            children.append(child)
            assert int(child.stdout.readline()) == PER_HOLDER
        yield name, children[0].pid
    finally:
        for child in children:
            child.stdin.close()
            child.wait(timeout=60)
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture(scope="module", params=["udp", "unix"])
def many(request):
    with namespace_with(request.param) as (name, pid):
        yield request.param, name, pid


def _median(benchmark, kind: str, name: str, ratios) -> None:
    if benchmark.stats is not None:
        MEDIANS[kind, name] = benchmark.stats.stats.median
        ratios.add(f"{HOLDERS * PER_HOLDER:,} {kind.upper()} sockets, machine-wide", name,
                   benchmark.stats.stats.median)


def test_machine_wide(benchmark, many, ratios):
    kind, _name, pid = many
    read = lambda: _fast.namespace_sockets_linux(ALL_STATES, None, pid, None, kind_mask(kind))
    found = benchmark.pedantic(read, rounds=5, warmup_rounds=1)
    assert len(found) >= HOLDERS * PER_HOLDER
    _median(benchmark, kind, "sockdiag", ratios)


def test_ss(benchmark, many, ratios):
    kind, name, _pid = many
    option = "-uam" if kind == "udp" else "-xam"
    run = lambda: subprocess.run(["ss", "-N", name, option], stdout=subprocess.DEVNULL, check=True)
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _median(benchmark, kind, f"ss {option}", ratios)


def test_pure_python_reference(benchmark, many, ratios):
    kind, name, _pid = many
    fd = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        setns(fd)
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, reference.NETLINK_SOCK_DIAG) as nl:
            setns(home)

            def read():
                found = []
                for _kind, request in reference.dump_requests(kind_mask(kind), ALL_STATES):
                    buf = b"".join(reference.netlink_dump(nl, request, 3, True))
                    found += reference.inet_diag_dump(buf, None, "udp" if kind == "udp" else "tcp")
                return found

            assert len(benchmark.pedantic(read, rounds=2)) >= HOLDERS * PER_HOLDER
    finally:
        setns(home)
        os.close(fd)
        os.close(home)
    _median(benchmark, kind, "pure-Python reference", ratios)


def test_process_sockets_of_one_holder(benchmark, many, ratios):
    kind, _name, pid = many
    found = benchmark.pedantic(sockdiag.process_sockets, (pid,), {"kinds": kind}, rounds=5, warmup_rounds=1)
    assert len(found) == PER_HOLDER
    _median(benchmark, kind, f"process_sockets of a {PER_HOLDER:,}-socket holder", ratios)


def test_ratios(benchmark, many):
    kind = many[0]
    option = "-uam" if kind == "udp" else "-xam"
    sockdiag_s, ss_s = MEDIANS[kind, "sockdiag"], MEDIANS[kind, f"ss {option}"]
    line = f"{kind}: ss {option} / sockdiag machine-wide read: {ss_s / sockdiag_s:.2f}x (target >= 1x)"
    print("\n" + line)
    benchmark.extra_info["ratio"] = line
    benchmark.extra_info["medians_s"] = {f"{k}: {n}": v for (k, n), v in MEDIANS.items() if k == kind}


if __name__ == "__main__":
    hold(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
