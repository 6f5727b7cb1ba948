"""Byte budgets (fire once, at the right point) and fd headroom, on real processes."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

import sockdiag
from sockdiag._validate import parse_size
from sockdiag.budget import BudgetMonitor, ByteBudget

from sockdiag._linux import process_state
from testsupport.children import closing_sender, end
from conftest import drain, requires_linux, requires_root, wait_until

pytestmark = requires_linux


@pytest.mark.parametrize("text, expected", [
    ("500", 500), ("64K", 65536), ("64k", 65536), ("10M", 10 << 20), ("1.5G", 3 << 29),
    ("2MiB", 2 << 20), ("3 KB", 3072), ("1T", 1 << 40),
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "ten", "-5", "5X", "1..2M", "M"])
def test_parse_size_refuses(text):
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


def test_budget_arguments_are_checked():
    with pytest.raises(ValueError):
        ByteBudget(1)
    with pytest.raises(ValueError):
        ByteBudget(1, sent_bytes=1, action="exec")
    with pytest.raises(ValueError):
        ByteBudget(1, sent_bytes=1, action="stop", command="true")
    with pytest.raises(ValueError):
        ByteBudget(1, sent_bytes=1, action="explode")


# A child that sends (or receives) one step of bytes per line read on stdin.
STEPPER = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
step = int(sys.argv[2])
for line in sys.stdin:
    if line.strip() == "send":
        conn.sendall(b"s" * step)
    else:
        got = 0
        while got < step:
            got += len(conn.recv(step - got))
    print("done", flush=True)
"""

STEP = 60_000


@pytest.fixture
def stepper():
    """(child process, our end of its connection, do(action)) with a budget-free child."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        child = subprocess.Popen([sys.executable, "-c", STEPPER, str(listener.getsockname()[1]), str(STEP)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        peer, _ = listener.accept()

    def step(what: str) -> None:
        if what == "receive":
            peer.sendall(b"r" * STEP)
        child.stdin.write(what + "\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        if what == "send":
            drain(peer, STEP)

    try:
        yield child, step
    finally:
        end(child)
        peer.close()


def poll_until_counted(monitor: BudgetMonitor, sent: int = 0, received: int = 0):
    """Poll until the monitor's totals reach (sent, received); every firing seen meanwhile."""
    firings = []

    def reached():
        row, fired = monitor.poll()
        if fired is not None:
            firings.append(fired)
        return row is not None and row.total_sent_bytes >= sent and row.total_received_bytes >= received

    wait_until(reached, timeout=5, step=0.02)
    return firings


def test_stop_fires_once_when_the_sent_budget_is_passed(stepper):
    child, step = stepper
    with BudgetMonitor(ByteBudget(child.pid, sent_bytes=100_000, action="stop")) as monitor:
        step("send")
        assert poll_until_counted(monitor, sent=STEP) == []  # 60000 of 100000: not yet
        assert process_state(child.pid) != "T"
        step("send")
        (fired,) = poll_until_counted(monitor, sent=2 * STEP)
        assert (fired.direction, fired.budget_bytes) == ("sent", 100_000)
        assert 2 * STEP <= fired.used_bytes < 2 * STEP + 10_000  # + any retransmission
        assert fired.action == "stop" and "SIGSTOP" in fired.detail
        wait_until(lambda: process_state(child.pid) == "T")
        # Resumed and past the budget again: it does not fire a second time.
        os.kill(child.pid, signal.SIGCONT)
        step("send")
        assert poll_until_counted(monitor, sent=3 * STEP) == []


def test_kill_on_received_budget(stepper):
    child, step = stepper
    with BudgetMonitor(ByteBudget(child.pid, received_bytes=STEP, action="kill")) as monitor:
        step("receive")
        (fired,) = poll_until_counted(monitor, received=STEP)
        assert fired.direction == "received" and fired.used_bytes == STEP  # no duplicates in received
        assert child.wait(timeout=5) == -signal.SIGKILL


def test_exec_runs_the_command_once_with_the_facts(stepper, tmp_path):
    child, step = stepper
    out = tmp_path / "fired"
    command = f'echo "$SOCKDIAG_PID $SOCKDIAG_DIRECTION $SOCKDIAG_BUDGET_BYTES $SOCKDIAG_USED_BYTES" >> {out}'
    budget = ByteBudget(child.pid, sent_bytes=STEP, action="exec", command=command)
    with BudgetMonitor(budget) as monitor:
        step("send")
        (fired,) = poll_until_counted(monitor, sent=STEP)
        budget.child.wait(timeout=5)
        step("send")
        assert poll_until_counted(monitor, sent=2 * STEP) == []
    pid, direction, budget_bytes, used_bytes = out.read_text().split()  # one line: it ran once
    assert (int(pid), direction, int(budget_bytes)) == (child.pid, "sent", STEP)
    assert int(used_bytes) == fired.used_bytes >= STEP
    assert child.poll() is None  # exec does nothing to the process itself


def test_report_only_does_not_touch_the_process(stepper):
    child, step = stepper
    with BudgetMonitor(ByteBudget(child.pid, sent_bytes=1)) as monitor:
        step("send")
        (fired,) = poll_until_counted(monitor, sent=STEP)
        assert fired.action == "report"
        assert fired.detail == f"pid {child.pid} sent {fired.used_bytes} bytes, budget 1"
        assert process_state(child.pid) in ("S", "R")


# --- fd headroom -------------------------------------------------------------

HOLDER = """
import os, sys
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
sys.stdin.readline()
"""


def hold_fds(count: int, limit: int) -> subprocess.Popen:
    def lower_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(count)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, preexec_fn=lower_limit)
    assert child.stdout.readline() == "ready\n"
    return child


@pytest.mark.parametrize("count, near", [(5, False), (55, True)])
def test_fd_headroom_warns_within_ten_percent(count, near):
    child = hold_fds(count, limit=64)
    try:
        headroom = sockdiag.fd_headroom(child.pid)
        assert headroom.soft_limit == 64
        assert headroom.open_fds == len(os.listdir(f"/proc/{child.pid}/fd"))
        assert headroom.open_fds >= count + 3
        assert headroom.near_limit is near
    finally:
        child.communicate("")


def test_fd_headroom_of_no_process():
    child = subprocess.Popen(["true"])
    child.wait()
    with pytest.raises(sockdiag.NoSuchProcess):
        sockdiag.fd_headroom(child.pid)


def test_a_budget_total_stays_exact_after_a_close():
    """The socket's last bytes are counted once at its close, and never again."""
    with closing_sender() as (child, close):
        with BudgetMonitor(ByteBudget(child.pid, sent_bytes=30_001)) as monitor:
            monitor.poll()
            close()
            closes = []

            def close_counted():
                row, fired = monitor.poll()
                assert fired is None, fired  # 30000 of 30001
                closes.append(row.closed if row else 0)
                return sum(closes)

            wait_until(close_counted, timeout=10, step=0.05)
            assert monitor.sent_total == 30_000
            for _ in range(4):
                time.sleep(0.1)
                assert monitor.poll() == (None, None) and monitor.sent_total == 30_000


SHORT_CONNECTIONS = """
import socket, sys
port, count, size = map(int, sys.argv[1:])
sys.stdin.readline()
for _ in range(count):
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"s" * size)
    conn.shutdown(socket.SHUT_WR)
    conn.recv(1)
    conn.close()
print("done", flush=True)
sys.stdin.readline()
"""


@requires_root
def test_a_budget_counts_connections_opened_and_closed_between_two_polls():
    """As root the connect tracer ties a short client connection to its process."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    count, size = 40, 10_000

    def serve():
        for _ in range(count):
            conn, _ = listener.accept()
            drain(conn, size)
            conn.close()

    child = subprocess.Popen([sys.executable, "-c", SHORT_CONNECTIONS, str(listener.getsockname()[1]),
                              str(count), str(size)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    server = threading.Thread(target=serve)
    try:
        with BudgetMonitor(ByteBudget(child.pid, sent_bytes=count * size - 1)) as monitor:
            monitor.poll()
            server.start()
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "done\n"  # every connection opened and closed
            server.join()
            firings = poll_until_counted(monitor, sent=count * size)
        assert monitor.sent_total == count * size
        assert [f.direction for f in firings] == ["sent"]
    finally:
        end(child)
        listener.close()
