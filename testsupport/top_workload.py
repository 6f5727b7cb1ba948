"""`sockdiag top --json` over a workload of short client connections in a
network namespace of its own: the runner shared by the attribution test and
its long benchmark (bench/bench_top_trace.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]
IN_NEW_NETNS = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def trace_instances() -> set[str]:
    """The names of sockdiag's trace instances in tracefs now (none without tracefs)."""
    from sockdiag import _linux, tracing

    mount = _linux.tracefs_mount()
    if mount is None:
        return set()
    return {name for name in os.listdir(os.path.join(mount, "instances"))
            if name.startswith(tracing.INSTANCE_PREFIX)}

# A server that reads every connection to its end, and a client whose
# connections each send PAYLOAD bytes, half-close, wait for the server's
# close and close: a few milliseconds each.
WORKLOAD = textwrap.dedent("""
    import json, socket, subprocess, sys, threading, time
    count, per_second, payload = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
    top = subprocess.Popen(sys.argv[4:], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)  # top's tracer and baseline are in place
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    received = [0]
    def serve():
        for _ in range(count):
            conn, _ = listener.accept()
            while data := conn.recv(1 << 16):
                received[0] += len(data)
            conn.close()
    server = threading.Thread(target=serve)
    server.start()
    client = subprocess.Popen([sys.executable, "-c", '''
    import socket, sys, time
    port, count, per_second, payload = map(float, sys.argv[1:])
    data = b"x" * int(payload)
    started = time.monotonic()
    for i in range(int(count)):
        conn = socket.create_connection(("127.0.0.1", int(port)))
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
        conn.close()
        time.sleep(max(0.0, started + (i + 1) / per_second - time.monotonic()))
    ''', str(listener.getsockname()[1]), str(count), str(per_second), str(payload)])
    client.wait()
    server.join()
    time.sleep(2.5)  # two more samples
    top.send_signal(2)
    lines = top.communicate(timeout=30)[0].splitlines()
    print(json.dumps({"server": __import__("os").getpid(), "client": client.pid,
                      "received": received[0], "samples": [json.loads(l) for l in lines]}))
""")


def run_top_workload(count: int, per_second: float, payload: int) -> dict:
    out = subprocess.run([*IN_NEW_NETNS, sys.executable, "-c", WORKLOAD, str(count), str(per_second),
                          str(payload), *SOCKDIAG, "top", "--interval", "1", "--json"],
                         capture_output=True, text=True, timeout=count / per_second + 90)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def totals(result: dict) -> dict:
    """{pid or None: (sent, received)} summed over every sample's interval bytes."""
    sums: dict = {}
    for sample in result["samples"]:
        for row in sample["processes"]:
            sent, received = sums.get(row["pid"], (0, 0))
            sums[row["pid"]] = (sent + (row["sent_bytes"] - row["retrans_bytes"]),
                                received + row["received_bytes"])
    return sums


def check_attribution(result: dict, count: int, payload: int) -> None:
    sums = totals(result)
    client_sent = sums.get(result["client"], (0, 0))[0]
    server_received = sums.get(result["server"], (0, 0))[1]
    unattributed_sent = sums.get(None, (0, 0))[0]
    assert result["received"] == count * payload
    assert all(s["connects_traced"] for s in result["samples"])
    # The server: every byte plus one FIN per connection, exactly.
    assert server_received == count * payload + count
    # The client: at least 99% of its bytes, and no byte counted twice.
    assert client_sent >= 0.99 * count * payload, sums
    assert client_sent + unattributed_sent == count * payload, sums
    assert set(sums) <= {result["client"], result["server"], None}
