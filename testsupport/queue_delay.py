"""Queue-delay cases measured against the truth, for tests/test_queue_delay.py and
bench/bench_queue_delay.py: a writer, looks through a DrainTracker, the wait
the kernel measures, and a shaped peer in a namespace of the run's own."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
import time

import sockdiag
from sockdiag import reference
from sockdiag.drain import DrainTracker

SAMPLE_S = 0.25


def kernel_tcp_info(sock: socket.socket):
    """TCP_INFO through Python's getsockopt, decoded by the struct reference."""
    return reference.tcp_info_linux(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 512))


def tracked(sock: socket.socket, tracker: DrainTracker, looks: int):
    """sock's struct after `looks` samples SAMPLE_S apart through a DrainTracker."""
    found = None
    for _ in range(looks):
        time.sleep(SAMPLE_S)
        mine = [s for s in sockdiag.process_sockets(os.getpid()) if s.fd == sock.fileno()]
        [found] = tracker.update(mine, time.monotonic())
    return found


class Writer(threading.Thread):
    """Writes flat out until the socket closes or stop() is called."""

    def __init__(self, sock: socket.socket, chunk_bytes: int = 16384) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.chunk_bytes = chunk_bytes
        self.stopped = threading.Event()

    def run(self) -> None:
        chunk = b"w" * self.chunk_bytes
        try:
            while not self.stopped.is_set():
                self.sock.sendall(chunk)
        except OSError:
            return

    def stop(self) -> None:
        """Stop writing: from its return on, the last byte written stays where it is."""
        self.stopped.set()
        self.join(timeout=30)
        assert not self.is_alive()


def estimate_and_truth(sock: socket.socket, writer: Writer, tracker: DrainTracker, looks: int,
                       timeout: float = 30.0):
    """(sock's struct after looks, the seconds its last byte then waited to be acknowledged).

    The writer stops before the last look, so the byte written last stays
    the last; its offset is acked + unacked + unsent, read by Python's
    getsockopt and ioctls right after the look.
    """
    tracked(sock, tracker, looks)
    writer.stop()
    found = tracked(sock, tracker, 1)
    start = time.monotonic()
    info, queued = kernel_tcp_info(sock), reference.send_buffer(sock)
    offset = info.bytes_acked + queued.unacked + queued.unsent
    while kernel_tcp_info(sock).bytes_acked < offset:
        assert time.monotonic() - start < timeout, "the marker was never acknowledged"
        time.sleep(0.005)
    return found, time.monotonic() - start


NAMESPACE = f"sdqdelay-{os.getpid()}"
# Names and a subnet of this run's own: runs side by side never meet.
_RUN = os.getpid() % 250
HOST, PEER = f"10.253.{_RUN}.1", f"10.253.{_RUN}.2"
VETH = f"sdqd{os.getpid() % 100000}"


@contextlib.contextmanager
def shaped_peer():
    """A peer address in a network namespace of its own behind a 10 Mbit/s TBF."""
    def run(*argv):
        subprocess.run(argv, check=True, capture_output=True)

    run("ip", "netns", "add", NAMESPACE)
    try:
        run("ip", "link", "add", VETH, "type", "veth", "peer", "name", VETH + "p")
        run("ip", "link", "set", VETH + "p", "netns", NAMESPACE)
        run("ip", "addr", "add", f"{HOST}/24", "dev", VETH)
        run("ip", "link", "set", VETH, "up")
        run("ip", "-n", NAMESPACE, "addr", "add", f"{PEER}/24", "dev", VETH + "p")
        run("ip", "-n", NAMESPACE, "link", "set", VETH + "p", "up")
        run("tc", "qdisc", "add", "dev", VETH, "root", "tbf", "rate", "10mbit", "burst", "32kb",
            "latency", "400ms")
        yield PEER
    finally:
        subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True)
        subprocess.run(["ip", "link", "del", VETH], capture_output=True)


def steady_reader_case(rate: float = 1_000_000):
    """A Python reader draining at rate bytes/s over loopback: (the socket's struct at
    the last look, the measured wait of its last byte)."""
    from .loopback import PacedReader, ethernet_like_pair

    # A small receive buffer keeps what is in flight small beside what is unsent.
    client, server = ethernet_like_pair(rcvbuf=64 * 1024)
    with client, server:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        reader = PacedReader(server)
        reader.rate = rate
        reader.start()
        writer = Writer(client)
        writer.start()
        try:
            return estimate_and_truth(client, writer, DrainTracker(), 16)
        finally:
            reader.stopped.set()


def bottleneck_case():
    """A writer to a reader behind a 10 Mbit/s TBF (shaped_peer; root): (the
    struct at the last look, the measured wait of its last byte, the
    connection's TcpInfo at the end)."""
    import sys

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
                found, truth = estimate_and_truth(client, writer, DrainTracker(), 16)
                return found, truth, kernel_tcp_info(client)
        finally:
            reader.kill()
            reader.wait()
