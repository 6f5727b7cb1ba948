"""What `top` adds to `sockdiag watch`: fd headroom in the header, byte budgets."""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading

import pytest

from sockdiag._linux import process_state
from testsupport.children import end
from conftest import requires_linux, wait_until

pytestmark = requires_linux

CLI = [sys.executable, "-c", "from sockdiag.cli import main; main()"]

# Sends CHUNK bytes every PAUSE seconds to the port in argv[1] until killed.
TRICKLE = """
import socket, sys, time
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print("connected", flush=True)
while True:
    conn.sendall(b"t" * 10_000)
    time.sleep(0.01)
"""


@pytest.fixture
def trickle():
    """A child sending about 1 MB/s to a listener here that reads everything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    child = subprocess.Popen([sys.executable, "-c", TRICKLE, str(listener.getsockname()[1])],
                             stdout=subprocess.PIPE, text=True)
    peer, _ = listener.accept()
    assert child.stdout.readline() == "connected\n"
    stop = threading.Event()

    def read():
        peer.settimeout(0.1)
        while not stop.is_set():
            try:
                if not peer.recv(1 << 16):
                    return
            except socket.timeout:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    try:
        yield child
    finally:
        end(child)
        stop.set()
        reader.join()
        peer.close()
        listener.close()


def test_budget_stops_the_process_once_at_the_right_point(trickle):
    budget = 200 * 1024
    out = subprocess.run([*CLI, "watch", str(trickle.pid), "--json", "--interval", "0.1", "--count", "25",
                          "--budget-sent", "200K", "--on-exceed", "stop"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert all(json.loads(line)["pid"] == trickle.pid for line in out.stdout.splitlines())
    notices = [line for line in out.stderr.splitlines() if "budget passed" in line]
    assert len(notices) == 1, out.stderr
    used = int(re.search(r"sent (\d+) bytes, budget (\d+): sent SIGSTOP", notices[0]).group(1))
    # At the first refresh past the budget: about 1 MB/s, 0.1 s refreshes.
    assert budget <= used < budget + 400_000
    wait_until(lambda: process_state(trickle.pid) == "T")


def test_budget_line_and_exec_in_the_table(trickle, tmp_path):
    marker = tmp_path / "ran"
    out = subprocess.run([*CLI, "watch", str(trickle.pid), "--interval", "0.1", "--count", "15",
                          "--budget-sent", "50K", "--on-exceed", f"exec echo $SOCKDIAG_DIRECTION >> {marker}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    budget_lines = [line for line in out.stdout.splitlines() if line.startswith("budget: sent ")]
    assert budget_lines and "of 50K" in budget_lines[0]
    assert "PASSED (sent), exec done" in budget_lines[-1]
    wait_until(lambda: marker.exists() and marker.read_text() == "sent\n")
    assert trickle.poll() is None  # exec leaves the process alone


def test_no_budget_no_budget_line(trickle):
    out = subprocess.run([*CLI, "watch", str(trickle.pid), "--once"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "budget:" not in out.stdout
    assert re.search(r"^fds \d+ of \d+ \(RLIMIT_NOFILE soft limit\)$", out.stdout, re.M)


@pytest.mark.parametrize("args, message", [
    (["--on-exceed", "stop"], "--on-exceed needs --budget-sent or --budget-received"),
    (["--budget-sent", "lots"], "not a size"),
    (["--budget-sent", "1M", "--on-exceed", "explode"], "use stop, kill or 'exec COMMAND'"),
    (["--budget-sent", "1M", "--on-exceed", "exec"], "use stop, kill or 'exec COMMAND'"),
])
def test_bad_budget_options_are_one_line(args, message):
    out = subprocess.run([*CLI, "watch", str(os.getpid()), "--once", *args], capture_output=True, text=True)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


HOLDER = """
import os, socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[1]))]
print("ready", flush=True)
sys.stdin.readline()
"""


@pytest.mark.parametrize("count, warned", [(5, False), (55, True)])
def test_fd_headroom_warning_in_the_header(count, warned):
    def lower_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(count)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, preexec_fn=lower_limit)
    try:
        assert child.stdout.readline() == "ready\n"
        out = subprocess.run([*CLI, "watch", str(child.pid), "--once"], capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        line = next(line for line in out.stdout.splitlines() if line.startswith("fds "))
        assert " of 64 (RLIMIT_NOFILE soft limit)" in line
        assert ("WARNING: within 10% of the limit" in line) is warned
    finally:
        child.communicate("")
