"""Short client connections go to their process: the connect tracer under `sockdiag top`.

Each scenario runs in a network namespace of its own (only its traffic is
accounted); the tracer is global to the machine, so its instance and its
removal are checked in tracefs itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from sockdiag import tracing

import traffic_workload as workload
from conftest import requires_root, wait_until

requires_unshare = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                                      reason="needs unshare (util-linux) and ip (iproute2)")
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]
IN_NEW_NETNS = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']

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


@requires_root
@requires_unshare
def test_short_client_connections_belong_to_the_client():
    """200 connections in about two seconds, 100,000 bytes each (the issue's case)."""
    result = run_top_workload(200, 100, 100_000)
    check_attribution(result, 200, 100_000)


@requires_root
@requires_unshare
def test_a_thousand_connections_a_second_for_thirty_seconds():
    result = run_top_workload(30_000, 1000, 10_000)
    check_attribution(result, 30_000, 10_000)
    assert not any("dropped" in note for s in result["samples"] for note in s.get("notes", []))


@requires_root
@requires_unshare
def test_accountant_scenario_with_tracing():
    out = subprocess.run([*IN_NEW_NETNS, sys.executable, os.path.abspath(workload.__file__),
                          "scenario"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    accounted = result["accounted"]
    assert accounted["connects_traced"]
    client = accounted["totals"][str(result["client_pid"])]
    upload = workload.SHORT * workload.SHORT_BYTES + workload.LONG * workload.LONG_BYTES
    assert client["sent"] >= 0.99 * upload
    unattributed = accounted["totals"].get("None", {"sent": 0})
    assert client["sent"] + unattributed["sent"] == upload


def instances() -> set[str]:
    mount = tracing.tracefs_mount()
    if mount is None:
        return set()
    return {name for name in os.listdir(os.path.join(mount, "instances"))
            if name.startswith(tracing.INSTANCE_PREFIX)}


def start_top() -> subprocess.Popen:
    top = subprocess.Popen([*SOCKDIAG, "top", "--json", "--interval", "0.2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert top.stdout.readline(), top.stderr.read()
    assert f"{tracing.INSTANCE_PREFIX}{top.pid}" in instances()
    return top


@requires_root
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_and_sigterm_remove_the_trace_instance(signum):
    top = start_top()
    top.send_signal(signum)
    _, err = top.communicate(timeout=20)
    assert top.returncode == 0 and "Traceback" not in err
    assert f"{tracing.INSTANCE_PREFIX}{top.pid}" not in instances()


@requires_root
def test_the_next_run_removes_what_a_killed_one_left():
    top = start_top()
    top.kill()
    top.wait()
    top.stdout.close()
    top.stderr.close()
    left = f"{tracing.INSTANCE_PREFIX}{top.pid}"
    assert left in instances()
    out = subprocess.run([*SOCKDIAG, "top", "--once", "--json", "--interval", "0.1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert left not in instances()


def test_without_root_the_note_says_what_cannot_be_attributed():
    from unprivileged import run_unprivileged

    out = run_unprivileged(
        "-c", "from sockdiag.accounting import TrafficAccountant, coverage_notes\n"
              "with TrafficAccountant() as a:\n"
              "    print('\\n'.join(coverage_notes(a.sample())))\n").stdout
    assert "client connections that close within one sample cannot be attributed" in out
    assert "needs root" in out


def test_events_are_parsed_from_the_fields_output():
    line = (b"         python3-28626   (  28570) [001] .....  1059.886742: inet_sock_set_state: "
            b"skaddr=0xffff88810f23d340 (-131387090545856) oldstate=0x%x (%d) newstate=0x%x (%d) "
            b"sport=0x9388 (%d) dport=0xa3a9 (41897) family=0x2 (2) protocol=0x6 (6) "
            b"saddr=0x100007f (16777343) daddr=0x100007f (16777343) saddr_v6=<INVALID-SIZE> "
            b"daddr_v6=<INVALID-SIZE>\n")
    text = line % (7, 7, 2, 2, 0) + line % (2, 2, 1, 1, 37768)
    matches = [m.groups() for m in tracing._LINE.finditer(text)]
    assert [m[0] for m in matches] == [b"28570", b"28570"]
    assert matches[1][4] == b"37768"
