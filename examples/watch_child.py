"""Watch another process's sockets from outside it: sockdiag.process_sockets(pid).

Starts a child Python process that uploads --megabytes over loopback to
this process, which reads slowly.  Every --interval seconds it prints the
child's TCP sockets as seen from outside: no change to the child's code.

    $ python examples/watch_child.py
    child pid 3814 uploads 4 MiB; reading 2048 KiB/s
      time_s    fd  remote           state          unacked_kib    unsent_kib    free_kib    queue_delay_ms
    --------  ----  ---------------  -----------  -------------  ------------  ----------  ----------------
       0.007     3  127.0.0.1:44673  ESTABLISHED            0.0        2447.1        68.2               4.5
       0.208     3  127.0.0.1:44673  ESTABLISHED            0.0        2102.1       421.3              59.0
       0.405     3  127.0.0.1:44673  ESTABLISHED           93.0        1637.1       799.8             111.4
       0.601     3  127.0.0.1:44673  ESTABLISHED            0.0        2148.6       374.0             147.8
       0.802     3  127.0.0.1:44673  ESTABLISHED            0.0        1776.6       752.5             121.2
       1.002     3  127.0.0.1:44673  FIN_WAIT1              0.0        1952.0       573.8             133.4
       1.207     3  127.0.0.1:44673  FIN_WAIT1              0.0        1580.0       952.3             107.8
       1.404     3  127.0.0.1:44673  FIN_WAIT1             93.0        1115.0      1330.8              76.2
       1.609     3  127.0.0.1:44673  FIN_WAIT1              0.0         743.0      1804.0              50.1
       1.805     3  127.0.0.1:44673  FIN_WAIT1              0.0         371.0      2182.5              25.4
    child exited with status 0

The child's sendall() returns at about 1 s and it shuts its side down
(FIN_WAIT1), yet almost 2 MiB are still in its send buffer: "sent" to the
program is not "sent" to the network.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time

from tabulate import tabulate

import sockdiag

CHILD = """
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1280 * 1024)
sock.sendall(b"x" * int(sys.argv[2]))
sock.shutdown(socket.SHUT_WR)
sock.recv(1)  # wait for the reader to finish
"""


def kib(value):
    return None if value is None else value / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=4, help="MiB the child uploads (default 4)")
    parser.add_argument("--read-rate", type=float, default=2048, help="our KiB/s (default 2048)")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between looks (default 0.2)")
    args = parser.parse_args()
    total = int(args.megabytes * 1024 * 1024)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(port), str(total)])
        try:
            listener.settimeout(10)
            conn, _ = listener.accept()
            with conn:
                # A small receive buffer keeps the backlog in the child's send buffer.
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
                print(f"child pid {child.pid} uploads {args.megabytes:g} MiB; reading {args.read_rate:g} KiB/s")
                watch(child, conn, port, total, args)
            print(f"child exited with status {child.wait(timeout=10)}")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def watch(child: subprocess.Popen, conn: socket.socket, port: int, total: int, args) -> None:
    """Read total bytes at the chosen rate, printing the child's sockets as we go."""
    rows = []
    start = next_look = time.monotonic()
    got = 0
    while got < total:
        data = conn.recv(16 * 1024)
        if not data:
            break
        got += len(data)
        now = time.monotonic()
        if now >= next_look:
            next_look += args.interval
            for s in sockdiag.process_sockets(child.pid):
                if s.remote_port == port:  # the upload, not other sockets it may hold
                    rows.append((now - start, s.fd, s.remote, s.state, kib(s.unacked), kib(s.unsent),
                                 kib(s.free), None if s.queue_delay_s is None else s.queue_delay_s * 1000))
        time.sleep(max(0.0, start + got / (args.read_rate * 1024) - time.monotonic()))
    conn.sendall(b"!")  # lets the child exit
    print(tabulate(rows, floatfmt=("0.3f", "", "", "", ".1f", ".1f", ".1f", ".1f"), headers=(
        "time_s", "fd", "remote", "state", "unacked_kib", "unsent_kib", "free_kib", "queue_delay_ms")))


if __name__ == "__main__":
    main()
