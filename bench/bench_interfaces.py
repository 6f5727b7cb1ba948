"""sockdiag.interfaces() against its peers and baselines.

    pytest bench/bench_interfaces.py

Baselines: the pure-Python equivalent (sockdiag.reference.interfaces: the
same dump with the socket module, decoded with struct),
psutil.net_io_counters(pernic=True) (reads /proc/net/dev in C),
pyroute2's IPRoute().get_links() (the same rtnetlink dump, parsed in Python;
its socket is opened once, outside the timing), a pure-Python parse of
/proc/net/dev, and the bare dump with Python's socket module and no decoding
(the kernel's share).  decode.rtnl_link_dump on a captured dump is the
decoding alone.
"""

from __future__ import annotations

import socket
import struct

import psutil
import pytest
from pyroute2 import IPRoute

import sockdiag
from sockdiag import decode, reference

pytestmark = pytest.mark.benchmark(group="interfaces", min_rounds=200, warmup=True)

GETLINK_DUMP = struct.pack("=IHHIIBxHiII", 32, 18, 0x301, 1, 0, socket.AF_UNSPEC, 0, 0, 0, 0)


def proc_net_dev() -> dict[str, tuple[int, ...]]:
    """The pure-Python way: parse /proc/net/dev."""
    result = {}
    with open("/proc/net/dev") as f:
        for line in f.readlines()[2:]:
            name, numbers = line.split(":", 1)
            result[name.strip()] = tuple(map(int, numbers.split()))
    return result


def bare_dump() -> bytes:
    """One RTM_GETLINK dump read with Python's socket module, not decoded."""
    datagrams = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.send(GETLINK_DUMP)
        while True:
            datagram = sock.recv(32768)
            datagrams.append(datagram)
            # NLMSG_DONE is alone in the last datagram.
            if struct.unpack_from("=H", datagram, 4)[0] == 3:
                return b"".join(datagrams)


def test_sockdiag_interfaces(benchmark):
    result = benchmark(sockdiag.interfaces)
    assert "lo" in result


def test_reference_interfaces(benchmark):
    assert "lo" in benchmark(reference.interfaces)


def test_psutil_net_io_counters(benchmark):
    result = benchmark(psutil.net_io_counters, pernic=True)
    assert "lo" in result


def test_pyroute2_get_links(benchmark):
    with IPRoute() as ipr:
        result = benchmark(ipr.get_links)
    assert any(link.get_attr("IFLA_IFNAME") == "lo" for link in result)


def test_python_proc_net_dev(benchmark):
    assert "lo" in benchmark(proc_net_dev)


def test_bare_dump_python_socket(benchmark):
    assert benchmark(bare_dump)


def test_decode_captured_dump(benchmark):
    dump = bare_dump()
    assert "lo" in benchmark(decode.rtnl_link_dump, dump)


# --- many interfaces: 100 veth pairs in a namespace of their own (root) -------------

CLONE_NEWNET = 0x40000000


@pytest.fixture(scope="module")
def many_interfaces():
    """This thread moved into a new namespace with lo + 200 veth ends; moved back after."""
    import ctypes
    import os
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    libc = ctypes.CDLL(None, use_errno=True)
    name = f"sdbench-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".ip") as batch:
            batch.writelines(f"link add sdv{i}a type veth peer name sdv{i}b\n" for i in range(100))
            batch.flush()
            subprocess.run(["ip", "-n", name, "-batch", batch.name], check=True)
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        yield 201
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(home)
        os.close(there)
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.mark.benchmark(group="201 interfaces", min_rounds=50)
def test_many_sockdiag_interfaces(benchmark, many_interfaces):
    assert len(benchmark(sockdiag.interfaces)) == many_interfaces


@pytest.mark.benchmark(group="201 interfaces", min_rounds=50)
def test_many_psutil_net_io_counters(benchmark, many_interfaces):
    assert len(benchmark(psutil.net_io_counters, pernic=True)) == many_interfaces


@pytest.mark.benchmark(group="201 interfaces", min_rounds=50)
def test_many_python_proc_net_dev(benchmark, many_interfaces):
    assert len(benchmark(proc_net_dev)) == many_interfaces


def test_paired_ratio_to_psutil(benchmark):
    """interfaces() against psutil.net_io_counters(pernic=True), timed in turn
    in each round (batches of 200 calls) so that both medians are taken under
    the same load; target <= 0.5x."""
    import statistics
    import time

    def batch_s(function) -> float:
        started = time.perf_counter()
        for _ in range(200):
            function(pernic=True) if function is psutil.net_io_counters else function()
        return (time.perf_counter() - started) / 200

    ours, theirs = [], []
    for _ in range(3 if benchmark.disabled else 51):
        ours.append(batch_s(sockdiag.interfaces))
        theirs.append(batch_s(psutil.net_io_counters))
    ratio = statistics.median(ours) / statistics.median(theirs)
    line = (f"interfaces() {statistics.median(ours) * 1e6:.1f} us / psutil net_io_counters(pernic=True) "
            f"{statistics.median(theirs) * 1e6:.1f} us = {ratio:.2f}x (target <= 0.5x, "
            f"{len(sockdiag.interfaces())} interfaces)")
    benchmark.extra_info["paired_ratio"] = line
    benchmark.pedantic(lambda: None, rounds=1)
    print("\n" + line)
