"""Child processes in tests: their state, and cleaning them up whatever state they are in."""

from __future__ import annotations

import os
import signal
import subprocess


def end(child: subprocess.Popen) -> None:
    """Kill and reap child, even a stopped one."""
    if child.poll() is None:
        os.kill(child.pid, signal.SIGCONT)
        child.kill()
    child.wait()


def with_default_sigint() -> None:
    """preexec_fn for a child that must take Ctrl-C: a test run started in the
    background inherits SIGINT ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
