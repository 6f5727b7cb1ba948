"""Real loopback TCP connections for tests and benchmarks."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
import threading
import time

# The kernel's own counts of a socket's send queue, read with fcntl as an
# independent check of sockdiag's: all of it, and its unsent part.
SIOCOUTQ = 0x5411
SIOCOUTQNSD = 0x894B


def ioctl_int(sock: socket.socket, request: int) -> int:
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0" * 4))[0]


def connected_pair(family: int = socket.AF_INET):
    """(client, server) TCP sockets on loopback; nobody reads the server side."""
    host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        server, _ = listener.accept()
    return client, server


def fill(sock: socket.socket, limit: int = 64 << 20) -> int:
    """Write until the kernel refuses more (the peer does not read); bytes written."""
    sock.setblocking(False)
    chunk = b"x" * 65536
    written = 0
    try:
        while written < limit:
            written += sock.send(chunk)
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return written


def drain(sock: socket.socket, nbytes: int, timeout: float = 10.0) -> None:
    """Read exactly nbytes from sock."""
    sock.settimeout(timeout)
    got = 0
    while got < nbytes:
        data = sock.recv(min(1 << 20, nbytes - got))
        if not data:
            raise EOFError(f"peer closed after {got} of {nbytes} bytes")
        got += len(data)


@contextlib.contextmanager
def streaming(client: socket.socket, server: socket.socket, chunk: int = 10_000, pause_s: float = 0.01):
    """Within the block, client sends chunk bytes every pause_s and server reads them (a thread)."""
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            client.sendall(b"x" * chunk)
            drain(server, chunk)
            time.sleep(pause_s)

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        yield
    finally:
        stop.set()
        streamer.join()


def wait_until(predicate, timeout: float = 5.0, step: float = 0.01):
    """Poll predicate until it returns a true value; that value, or AssertionError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(step)


def held_still(client: socket.socket) -> tuple[int, int]:
    """(unsent, unacked) of a filled client once the kernel stops moving them
    (it does for a moment after a fill): SIOCOUTQNSD, and SIOCOUTQ less it."""
    kernel = [None]

    def still():
        now = ioctl_int(client, SIOCOUTQNSD), ioctl_int(client, SIOCOUTQ)
        stable, kernel[0] = now == kernel[0], now
        return stable

    wait_until(still, step=0.25)
    unsent, queued = kernel[0]
    return unsent, queued - unsent


def endpoint(address) -> str:
    """A socket address as ss writes it: 127.0.0.1:80, [::1]:80."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ss_filter(sock) -> list[str]:
    """An ss filter matching exactly sock's connection (both endpoints).

    The source port alone is not enough: with tens of thousands of sockets
    on the machine, another connection can share it.
    """
    return ["src", endpoint(sock.getsockname()), "dst", endpoint(sock.getpeername())]


def ethernet_like_pair(rcvbuf: int):
    """(client, server) on loopback with a 1448-byte MSS and a small receive
    buffer: the slow reader limits the sender at once, and its window
    opens in small steps (a 64 KiB loopback MSS would open it in bursts)."""
    with socket.socket() as listener:
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
        client.connect(listener.getsockname())
        server, _ = listener.accept()
    return client, server


class PacedReader(threading.Thread):
    """Reads the server side as fast as it can, or at ``rate`` bytes/s once set."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.rate: float | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            rate = self.rate
            chunk = 1 << 20 if rate is None else max(1, int(rate / 100))
            started = time.monotonic()
            try:
                got = len(self.sock.recv(chunk))
            except socket.timeout:
                continue
            except OSError:
                return
            if not got:
                return
            if rate is not None:
                time.sleep(max(0.0, got / rate - (time.monotonic() - started)))
