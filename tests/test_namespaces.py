"""Processes in another network namespace: top's accounting and watch's interfaces.

A child process in a namespace of the test's own moves a known number of
bytes over its loopback; the accountant (run from the test's namespace)
must give them to that process, and the interfaces of that namespace must
be those `ip -n` lists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

import sockdiag
from sockdiag import _linux
from sockdiag._linux import network_namespace
from sockdiag.accounting import TrafficAccountant, coverage_notes

from conftest import requires_linux, requires_root

pytestmark = [requires_linux, requires_root]

TRANSFER = 5_000_000

# Listens, says "ready", waits for a line, sends TRANSFER bytes to itself
# over loopback, says "done" and keeps both ends open until stdin closes.
WORKER = r"""
import socket, sys, threading
total = int(sys.argv[1])
listener = socket.create_server(("127.0.0.1", 0))
print("ready", flush=True)
sys.stdin.readline()
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
received = []
def read():
    n = 0
    while n < total:
        n += len(server.recv(1 << 20))
    received.append(n)
reader = threading.Thread(target=read)
reader.start()
client.sendall(b"n" * total)
reader.join()
print("done", received[0], flush=True)
sys.stdin.read()
"""


class Worker:
    def __init__(self) -> None:
        self.netns = f"sdtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-c", WORKER, str(TRANSFER)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "ready"
        self.pid = self.process.pid

    def transfer(self) -> int:
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        word, received = self.process.stdout.readline().split()
        assert word == "done"
        return int(received)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        subprocess.run(["ip", "netns", "delete", self.netns], check=False)


@pytest.fixture
def worker():
    made = Worker()
    try:
        yield made
    finally:
        made.close()


@pytest.mark.skipif(
    sys.platform.startswith("linux")
    and _linux.initial_network_namespace() != network_namespace(os.getpid()),
    reason="top reads other network namespaces from the host's only: this is not it, "
           "or reading pid 2's namespace needs root")
@pytest.mark.parametrize("pids", [None, "worker"], ids=["every-process", "one-pid"])
def test_top_attributes_the_bytes_of_a_process_in_another_namespace(worker, pids):
    with TrafficAccountant(pids=None if pids is None else [worker.pid], trace_connects=False) as accountant:
        assert worker.transfer() == TRANSFER
        sample = accountant.sample()
    rows = {row.pid: row for row in sample.processes}
    row = rows[worker.pid]
    # Both ends are the worker's: it sent (retransmissions aside: a busy
    # loopback drops) and received every byte, once.
    assert (row.sent_bytes - row.retrans_bytes, row.received_bytes) == (TRANSFER, TRANSFER)
    assert row.connections == 2
    assert sample.unreadable_namespaces == 0
    assert not any("namespaces" in note for note in coverage_notes(sample))


def test_a_namespace_that_cannot_be_entered_is_noted():
    sample = sockdiag._common.TrafficSample(
        time=0.0, interval_s=1.0, processes=(), closed_sockets_counted=True, missed_sockets=0,
        notification_overflows=0, unreadable_processes=0, connects_traced=True,
        connects_untraced_reason=None, trace_overruns=0, running_as_root=False, unreadable_namespaces=3)
    assert any(note.startswith("3 network namespaces") for note in coverage_notes(sample))


def test_interfaces_of_a_process_are_those_of_its_namespace(worker):
    subprocess.run(["ip", "-n", worker.netns, "link", "add", "sdtv0", "type", "veth",
                    "peer", "name", "sdtv1"], check=True)
    listed = json.loads(subprocess.run(["ip", "-n", worker.netns, "-j", "-s", "link"], check=True,
                                       capture_output=True, text=True).stdout)
    found = sockdiag.interfaces(worker.pid)
    assert set(found) == {link["ifname"] for link in listed} == {"lo", "sdtv0", "sdtv1"}
    lo = next(link for link in listed if link["ifname"] == "lo")
    # The loopback of the namespace carried nothing since `ip -j -s` read it.
    assert (found["lo"].rx_bytes, found["lo"].rx_packets) == (
        lo["stats64"]["rx"]["bytes"], lo["stats64"]["rx"]["packets"])
    assert set(sockdiag.interfaces()) != set(found)
