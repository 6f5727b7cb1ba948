"""One rule for every live view, --once included: SIGINT, SIGTERM and SIGHUP
end it as `q` does, with status 0 and what it made (a trace instance) removed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from sockdiag import tracing

from conftest import requires_root
from testsupport.children import with_default_stop_signals
from testsupport.loopback import wait_until
from testsupport.top_workload import SOCKDIAG, trace_instances

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the live views' samples are Linux's")

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]


def waiting(pid: int) -> bool:
    """Whether pid sleeps between two samples (the loop's time.sleep), not in its setup."""
    with open(f"/proc/{pid}/wchan") as f:
        return "nanosleep" in f.read()


def signalled_mid_view(args: list[str], signum: int, while_waiting=lambda pid: None
                       ) -> tuple[subprocess.CompletedProcess, int]:
    """`sockdiag ARGS` (a view with a long interval) given signum while it waits
    for a sample, after while_waiting(its pid); (what it did, its pid)."""
    view = subprocess.Popen([*SOCKDIAG, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=with_default_stop_signals)
    try:
        wait_until(lambda: view.poll() is not None or waiting(view.pid), timeout=30)
        while_waiting(view.pid)
        view.send_signal(signum)
        out, err = view.communicate(timeout=30)
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
    return subprocess.CompletedProcess(view.args, view.returncode, out, err), view.pid


@requires_root
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_ends_top_once_with_status_0_and_its_trace_instance_removed(signum):
    def traced(pid: int) -> None:
        assert f"{tracing.INSTANCE_PREFIX}{pid}" in trace_instances()

    done, pid = signalled_mid_view(["top", "--once", "--trace-connects", "--interval", "30"], signum,
                                   traced)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{tracing.INSTANCE_PREFIX}{pid}" not in trace_instances()


@pytest.mark.parametrize("args", [["ifstat", "--once"], ["ifstat", "--count", "2"], ["top", "--once"]],
                         ids=" ".join)
def test_a_signal_ends_a_view_of_two_samples_or_once_with_status_0(args):
    done, _ = signalled_mid_view([*args, "--interval", "30"], signal.SIGTERM)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_within_the_one_sample_of_watch_once_ends_it_with_status_0(signum):
    """The signal arrives while watch --once takes its only sample (sent from inside it)."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from sockdiag import _watch
        take_sample = _watch.take_sample

        def signalled(*args, **kwargs):
            os.kill(os.getpid(), {int(signum)})
            return take_sample(*args, **kwargs)

        _watch.take_sample = signalled
        sys.argv[1:] = ["watch", str(os.getpid()), "--once"]
        from sockdiag.cli import main
        main()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=with_default_stop_signals)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
