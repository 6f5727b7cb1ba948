"""Child processes in tests: their state, cleaning them up whatever state they
are in, and a child that closes a connection when told (counting at close)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

from sockdiag import _fast

from .loopback import drain, wait_until


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_child(script: str, *args: str) -> subprocess.Popen:
    """`python -c script args` with text pipes on its stdin and stdout, and
    testsupport importable in it: the helpers of tests serve their children too."""
    path = os.pathsep.join(filter(None, [REPOSITORY, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen([sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": path})


def end(child: subprocess.Popen) -> None:
    """Kill and reap child, even a stopped one."""
    if child.poll() is None:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
    child.wait()


def with_default_stop_signals() -> None:
    """preexec_fn for a child that must take Ctrl-C and a hang-up: a test run
    started in the background inherits SIGINT ignored, one under nohup SIGHUP,
    and a child keeps what it inherits ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


# A listener and 5 connections to it: 11 TCP sockets, printing "ready", held until stdin closes.
ELEVEN_SOCKETS = """
import socket, sys
listener = socket.create_server(("127.0.0.1", 0))
held = []
for _ in range(5):
    held.append(socket.create_connection(listener.getsockname()))
    held.append(listener.accept()[0])
print("ready", flush=True)
sys.stdin.read()
"""


SENDER = """
import socket, sys
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
conn.sendall(b"a" * 70000)
print("sent", flush=True)
sys.stdin.readline()
conn.sendall(b"b" * 30000)
conn.close()
print("closed", flush=True)
sys.stdin.readline()  # alive, without the socket, until the test ends
"""


@contextlib.contextmanager
def closing_sender():
    """A child that sent 70,000 bytes (all read and acknowledged) on its one
    connection; yields (child, close): close() makes it send 30,000 more
    and close the socket, and returns once they are read."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        child = python_child(SENDER, str(listener.getsockname()[1]))
        try:
            peer, _ = listener.accept()
            with peer:
                assert child.stdout.readline() == "sent\n"
                drain(peer, 70000)
                # Once the first 70000 bytes are all acknowledged.
                inode = next(i for i, pid in _fast.socket_owners([child.pid])[0].items())
                wait_until(lambda: next(s for s in _fast.tcp_counters()[0] if s[1] == inode)[2][1] == 70001)

                def close():
                    child.stdin.write("go\n")
                    child.stdin.flush()
                    drain(peer, 30000)
                    assert child.stdout.readline() == "closed\n"

                yield child, close
        finally:
            end(child)
            child.stdin.close()
            child.stdout.close()
