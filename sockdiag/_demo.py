"""The built-in workload of ``sockdiag demo``, run as ``python -m sockdiag._demo``.

One process holding, on loopback:

* a bulk sender writing as fast as it can to a reader that reads only
  ``READ_RATE`` bytes per second: its send buffer fills and the bytes wait
  *unsent* in the kernel, while the reader's socket holds what it has not
  read yet (its receive queue);
* the same sender and reader over IPv6 with TCP_NOTSENT_LOWAT set: about the
  same throughput with a small unsent queue (the writer waits instead);
* the same sender to a reader that stops reading for STALL_S seconds after
  every READ_S: while it stops, nothing is acknowledged and the queue is
  stalled on its receiver, whatever rate the last burst had;
* a UDP receiver that reads UDP_READ_RATE datagrams a second from a sender
  writing twice as many: its receive buffer fills and the kernel drops the
  rest (DROPS/s);
* a UNIX stream to an upstream that stopped reading (as a stuck php-fpm or
  gunicorn worker): its queue full, the writer blocked;
* a few idle connections and the listening sockets.

It prints one line of JSON naming the fds once every connection is up, and
stops after --duration seconds, or as soon as its standard input closes (the
watching parent ended or died).  ``workload()`` runs it as a child process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator

from ._exceptions import SockdiagError

READ_RATE = 2 << 20  # bytes per second each slow reader takes
READ_CHUNK = 64 << 10
LOWAT = 128 << 10  # TCP_NOTSENT_LOWAT of the second sender
IDLE_CONNECTIONS = 3
READ_S, STALL_S = 3.0, 5.0  # the stalling reader reads for READ_S, then stops for STALL_S
UDP_READ_RATE = 500  # datagrams per second the UDP receiver takes; its sender writes twice as many
DATAGRAM = b"\0" * 1200


def _slow_reader(sock: socket.socket, stop: threading.Event) -> None:
    pause = READ_CHUNK / READ_RATE
    while not stop.is_set():
        if not sock.recv(READ_CHUNK):
            return
        stop.wait(pause)


def _stalling_reader(sock: socket.socket, stop: threading.Event) -> None:
    pause = READ_CHUNK / READ_RATE
    while not stop.is_set():
        reading_until = time.monotonic() + READ_S
        while time.monotonic() < reading_until and not stop.is_set():
            if not sock.recv(READ_CHUNK):
                return
            stop.wait(pause)
        stop.wait(STALL_S)


def _datagram_sender(sock: socket.socket, address, stop: threading.Event) -> None:
    while not stop.is_set():
        for _ in range(20):
            try:
                sock.sendto(DATAGRAM, address)
            except OSError:
                return
        stop.wait(20 / (2 * UDP_READ_RATE))


def _datagram_reader(sock: socket.socket, stop: threading.Event) -> None:
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            sock.recv(len(DATAGRAM))
        except TimeoutError:
            continue
        except OSError:
            return
        stop.wait(1 / UDP_READ_RATE)


def _bulk_sender(sock: socket.socket, stop: threading.Event) -> None:
    chunk = b"\0" * READ_CHUNK
    sock.settimeout(0.2)  # so that stop is noticed while the buffer is full
    while not stop.is_set():
        try:
            sock.send(chunk)
        except TimeoutError:
            continue
        except OSError:
            return


def _connect(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    server, _ = listener.accept()
    return client, server


def run(duration: float) -> None:
    """Hold the workload for duration seconds (or until stdin closes)."""
    from ._platform import set_notsent_lowat

    stop = threading.Event()
    listeners = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.bind((host, 0))
        listener.listen(16)
        listeners.append(listener)
    bulk, slow = _connect(listeners[0])
    paced, paced_reader = _connect(listeners[1])
    set_notsent_lowat(paced, LOWAT)
    stalled, stalling_reader = _connect(listeners[0])
    udp_receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp_receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    udp_receiver.bind(("127.0.0.1", 0))
    udp_sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # The upstream's end is never read: the writer fills the queue once and blocks.
    upstream, upstream_peer = socket.socketpair()
    idle = [_connect(listeners[0]) for _ in range(IDLE_CONNECTIONS)]
    threads = [
        threading.Thread(target=_bulk_sender, args=(bulk, stop), daemon=True),
        threading.Thread(target=_slow_reader, args=(slow, stop), daemon=True),
        threading.Thread(target=_bulk_sender, args=(paced, stop), daemon=True),
        threading.Thread(target=_slow_reader, args=(paced_reader, stop), daemon=True),
        threading.Thread(target=_bulk_sender, args=(stalled, stop), daemon=True),
        threading.Thread(target=_stalling_reader, args=(stalling_reader, stop), daemon=True),
        threading.Thread(target=_datagram_sender, args=(udp_sender, udp_receiver.getsockname(), stop),
                         daemon=True),
        threading.Thread(target=_datagram_reader, args=(udp_receiver, stop), daemon=True),
        threading.Thread(target=_bulk_sender, args=(upstream, stop), daemon=True),
        # The parent closing our stdin (or dying) ends the workload early.
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True),
    ]
    for thread in threads:
        thread.start()
    print(json.dumps({"bulk": bulk.fileno(), "slow_reader": slow.fileno(),
                      "paced": paced.fileno(), "paced_reader": paced_reader.fileno(),
                      "stalled": stalled.fileno(), "stalling_reader": stalling_reader.fileno(),
                      "udp_receiver": udp_receiver.fileno(), "upstream": upstream.fileno(),
                      "idle": [pair[0].fileno() for pair in idle]}), flush=True)
    try:
        stop.wait(duration)
    finally:
        stop.set()
        for sock in ([bulk, slow, paced, paced_reader, stalled, stalling_reader, udp_receiver, udp_sender,
                      upstream, upstream_peer, *listeners]
                     + [s for pair in idle for s in pair]):
            sock.close()


def legend(roles: dict) -> list[str]:
    """Lines for the view's header saying which fd plays which part (roles: workload's fds)."""
    from .fields import format_bytes

    idle = ", ".join(str(fd) for fd in roles["idle"])
    return [
        f"demo: fd {roles['bulk']} writes flat out to a reader taking "
        f"{format_bytes(READ_RATE)}/s: bytes wait UNSENT",
        f"      fd {roles['paced']} same, IPv6, TCP_NOTSENT_LOWAT {format_bytes(LOWAT)}: "
        "the writer waits instead",
        f"      fd {roles['stalled']} same, to a reader that stops for {STALL_S:.0f} s after every "
        f"{READ_S:.0f} s: STALLED on its receiver",
        f"      fd {roles['udp_receiver']} UDP, takes {UDP_READ_RATE} datagrams/s of twice as many: "
        f"DROPS/s; fd {roles['upstream']} UNIX, to an upstream that stopped reading",
        f"      fds {roles['slow_reader']}, {roles['paced_reader']}, {roles['stalling_reader']}: "
        f"the readers (RECV-Q); fds {idle}: idle connections",
    ]


@contextlib.contextmanager
def workload(duration: float) -> Iterator[tuple[int, dict]]:
    """Run the workload in a child process: (its pid, its fds by role).

    The child outlives duration by a margin so that a watcher sampling for
    duration sees it throughout; it is stopped on leaving the block however
    that happens.  Its own session keeps a terminal's Ctrl-C away from it:
    the parent ends it.
    """
    # `-m` puts the working directory first on sys.path: run it beside the
    # package this process imported, so that a source checkout in the
    # caller's directory (without the compiled _fast) is not picked up instead.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-m", "sockdiag._demo", "--duration", str(duration + 10)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        cwd=package_parent)
    try:
        line = child.stdout.readline()
        if not line:
            raise SockdiagError(f"the demo workload failed to start (exit status {child.wait()})")
        yield child.pid, json.loads(line)
    finally:
        child.stdin.close()  # the child stops when its stdin closes
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    run(parser.parse_args().duration)


if __name__ == "__main__":
    main()
