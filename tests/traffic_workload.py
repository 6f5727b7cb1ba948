"""A workload moving a known number of bytes, and a sampler accounting it.

    traffic_workload.py scenario [--no-closed-sockets] [--no-trace] [--children-as-nobody PYTHON]
        Runs everything below on loopback (of the current network namespace:
        the tests start it inside a new one) and prints one JSON object:
        what the server and client moved, by their own count, and what the
        accountant saw per process.
    traffic_workload.py server SHORT LONG REPLY          (stdlib only)
    traffic_workload.py client PORT SHORT SHORT_BYTES LONG LONG_BYTES   (stdlib only)
    traffic_workload.py sample INTERVAL [--no-closed-sockets] [--no-trace]

The client opens LONG connections for the whole run and SHORT connections
that live about a millisecond each, spread over about a second, so most of
them open and close between two samples.  Each connection sends its bytes,
half-closes, and reads the server's REPLY bytes.
"""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time

SHORT, SHORT_BYTES = 300, 20_000
LONG, LONG_BYTES = 3, 1_000_000
REPLY_BYTES = 2_000
INTERVAL_S = 0.2
RUN_S = 1.2


def _read_to_end(conn: socket.socket) -> int:
    """Read until the peer half-closes; the number of bytes read."""
    got = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            return got
        got += len(data)


def serve(short: int, long: int, reply: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    print(listener.getsockname()[1], flush=True)
    totals = {"received": 0, "sent": 0}
    lock = threading.Lock()

    def handle(conn: socket.socket) -> None:
        got = _read_to_end(conn)
        conn.sendall(b"r" * reply)
        conn.close()
        with lock:
            totals["received"] += got
            totals["sent"] += reply

    threads = []
    for _ in range(short + long):
        conn, _ = listener.accept()
        thread = threading.Thread(target=handle, args=(conn,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()
    listener.close()
    print(json.dumps(totals), flush=True)


def _exchange(conn: socket.socket, payload: bytes, chunks: int = 1, pause_s: float = 0.0) -> int:
    step = len(payload) // chunks
    for i in range(chunks):
        conn.sendall(payload[i * step:(i + 1) * step] if i < chunks - 1 else payload[i * step:])
        time.sleep(pause_s)
    conn.shutdown(socket.SHUT_WR)
    got = _read_to_end(conn)
    conn.close()
    return got


def client(port: int, short: int, short_bytes: int, long: int, long_bytes: int) -> None:
    totals = {"sent": 0, "received": 0}
    lock = threading.Lock()

    def long_connection() -> None:
        conn = socket.create_connection(("127.0.0.1", port))
        got = _exchange(conn, b"L" * long_bytes, chunks=20, pause_s=RUN_S / 20)
        with lock:
            totals["sent"] += long_bytes
            totals["received"] += got

    threads = [threading.Thread(target=long_connection) for _ in range(long)]
    for thread in threads:
        thread.start()
    payload = b"s" * short_bytes
    for _ in range(short):
        got = _exchange(socket.create_connection(("127.0.0.1", port)), payload)
        with lock:
            totals["sent"] += short_bytes
            totals["received"] += got
        time.sleep(RUN_S / short)
    for thread in threads:
        thread.join()
    print(json.dumps(totals), flush=True)


def sample(interval_s: float, closed_sockets: bool, trace: bool) -> None:
    """Sample until stdin closes, then twice more; print totals per pid as JSON."""
    from sockdiag.accounting import TrafficAccountant, coverage_notes

    result = {"totals": {}, "missed_sockets": 0, "notification_overflows": 0,
              "unreadable_processes": 0, "notes": [], "samples": 0}
    with TrafficAccountant(closed_sockets=closed_sockets,
                           trace_connects=None if trace else False) as accountant:
        print("ready", flush=True)
        finishing = 0
        while finishing < 3:
            readable, _, _ = select.select([sys.stdin], [], [], interval_s)
            if readable and not sys.stdin.readline():
                finishing = max(finishing, 1)
            if finishing:
                finishing += 1
                time.sleep(interval_s)
            s = accountant.sample()
            result["samples"] += 1
            result["closed_sockets_counted"] = s.closed_sockets_counted
            result["connects_traced"] = s.connects_traced
            result["missed_sockets"] += s.missed_sockets
            result["notification_overflows"] = s.notification_overflows
            result["unreadable_processes"] = max(result["unreadable_processes"], s.unreadable_processes)
            result["notes"] = sorted(set(result["notes"]) | set(coverage_notes(s)))
            for row in s.processes:
                # sent counts retransmissions too: the payload is sent - retrans.
                result["totals"][str(row.pid)] = {
                    "sent": row.total_sent_bytes - row.total_retrans_bytes,
                    "received": row.total_received_bytes,
                    "acked": row.total_acked_bytes, "retrans": row.total_retrans_bytes}
    print(json.dumps(result), flush=True)


def scenario(flags: list[str], children_python: str | None) -> None:
    me = os.path.abspath(__file__)
    prefix = [sys.executable]
    sampler_prefix = [sys.executable]
    if children_python:
        # Workload as nobody; the sampler as a root without capabilities, so
        # it may not read the workload's fds.
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  "--inh-caps=-all", "--bounding-set=-all", children_python]
        sampler_prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", sys.executable]
    sampler = subprocess.Popen([*sampler_prefix, me, "sample", str(INTERVAL_S), *flags],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = client_proc = None
    try:
        assert sampler.stdout.readline().strip() == "ready"
        server = subprocess.Popen([*prefix, me, "server", str(SHORT), str(LONG), str(REPLY_BYTES)],
                                  stdout=subprocess.PIPE, text=True, cwd="/")
        port = int(server.stdout.readline())
        client_proc = subprocess.Popen(
            [*prefix, me, "client", str(port), str(SHORT), str(SHORT_BYTES), str(LONG), str(LONG_BYTES)],
            stdout=subprocess.PIPE, text=True, cwd="/")
        client_totals = json.loads(client_proc.communicate(timeout=60)[0])
        server_totals = json.loads(server.communicate(timeout=60)[0])
        accounted = json.loads(sampler.communicate("", timeout=60)[0])
    finally:
        for proc in (client_proc, server, sampler):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    print(json.dumps({"server_pid": server.pid, "client_pid": client_proc.pid,
                      "server": server_totals, "client": client_totals,
                      "accounted": accounted}))


def main(argv: list[str]) -> None:
    mode, args = argv[0], argv[1:]
    if mode == "server":
        serve(*map(int, args))
    elif mode == "client":
        client(*map(int, args))
    elif mode == "sample":
        sample(float(args[0]), "--no-closed-sockets" not in args, "--no-trace" not in args)
    elif mode == "scenario":
        python = args[args.index("--children-as-nobody") + 1] if "--children-as-nobody" in args else None
        scenario([flag for flag in args if flag in ("--no-closed-sockets", "--no-trace")], python)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
