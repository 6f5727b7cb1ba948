"""_linux's helpers against the kernel's own answers: a process that exits
while sockdiag looks at it (the helpers that answer None for it do, and
`sockdiag top --once` over short-lived connecting processes ends with status
0), the sysctl reader, and what AccessDenied tells root."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from sockdiag import AccessDenied, NotSupported, _linux

from conftest import requires_linux, requires_root
from unprivileged import NOBODY, run_unprivileged
from testsupport.top_workload import IN_NEW_NETNS, SOCKDIAG

pytestmark = requires_linux


def exited_pid() -> int:
    """The pid of a child that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_thread_group_of_a_thread_is_its_process_and_none_once_gone():
    tids, done = [], threading.Event()
    thread = threading.Thread(target=lambda: (tids.append(threading.get_native_id()), done.wait()))
    thread.start()
    try:
        while not tids:
            pass
        assert tids[0] != os.getpid()
        assert _linux.thread_group(tids[0]) == os.getpid()
    finally:
        done.set()
        thread.join()
    assert _linux.thread_group(exited_pid()) is None


def test_process_cgroup_is_proc_s_and_none_once_gone():
    with open("/proc/self/cgroup") as f:
        unified = [line[3:].rstrip("\n") for line in f if line.startswith("0::")]
    assert _linux.process_cgroup(os.getpid()) == (unified[0] if unified else None)
    assert _linux.process_cgroup(exited_pid()) is None


def test_a_missing_process_is_still_an_exception_where_documented():
    from sockdiag import NoSuchProcess

    with pytest.raises(NoSuchProcess):
        _linux.process_stat_fields(exited_pid())
    with pytest.raises(NoSuchProcess):
        _linux.process_name(exited_pid())


# A loopback listener in a network namespace of the test's own, and for
# DURATION_S seconds a stream of shell subshells that each connect, send one
# byte, hold the connection 0.3 s and exit: at every sample some of the
# processes top saw have gone.  Then `sockdiag top --once ARGS` RUNS times;
# prints each run's status and stderr.
WORKLOAD = textwrap.dedent("""
    import json, socket, subprocess, sys, threading, time
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    def serve():
        while True:
            conn, _ = listener.accept()
            conn.recv(1)
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    port = listener.getsockname()[1]
    clients = subprocess.Popen(["bash", "-c", f'''
        end=$((SECONDS + {DURATION_S}))
        while [ $SECONDS -lt $end ]; do
            (exec 3<>/dev/tcp/127.0.0.1/{port}; printf x >&3; sleep 0.3) 2>/dev/null &
            sleep 0.01
        done
        wait'''])
    time.sleep(0.5)
    runs = []
    for _ in range({RUNS}):
        top = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=60)
        runs.append([top.returncode, top.stderr])
    clients.kill()
    clients.wait()
    print(json.dumps(runs))
""")


@requires_root
@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None
                    or shutil.which("bash") is None,
                    reason="needs unshare (util-linux), ip (iproute2) and bash")
@pytest.mark.parametrize("args", [
    pytest.param([], id="traced"),
    pytest.param(["--by", "cgroup", "--no-trace-connects"], id="by-cgroup"),
])
def test_top_once_survives_processes_that_exit_mid_sample(args):
    if not args and not _linux.tracepoint_exists():
        pytest.skip("needs tracefs with sock:inet_sock_set_state (the connect tracer)")
    runs = 3
    out = subprocess.run([*IN_NEW_NETNS, sys.executable, "-c",
                          WORKLOAD.replace("{DURATION_S}", "15").replace("{RUNS}", str(runs)),
                          *SOCKDIAG, "top", "--once", *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [[0, ""]] * runs


@pytest.mark.skipif(shutil.which("sysctl") is None, reason="needs sysctl (procps)")
@pytest.mark.parametrize("name", ["net.core.rmem_max", "net.ipv4.tcp_notsent_lowat",
                                  "net.ipv4.tcp_available_congestion_control"])
def test_sysctl_is_what_the_sysctl_tool_reads(name):
    tool = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, check=True)
    assert _linux.sysctl(name) == tool.stdout.rstrip("\n")


def test_a_sysctl_this_kernel_lacks_is_not_supported():
    with pytest.raises(NotSupported, match="/proc/sys/net/core/no_such_sysctl"):
        _linux.sysctl("net.core.no_such_sysctl")


@requires_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_root_without_cap_sys_ptrace_is_told_what_it_lacks_not_to_run_as_root():
    other_user = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                                   "sleep", "30"])
    try:
        out = subprocess.run(["setpriv", "--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace", *SOCKDIAG,
                              "watch", str(other_user.pid), "--once"],
                             capture_output=True, text=True, timeout=30)
    finally:
        other_user.kill()
        other_user.wait()
    assert out.returncode == 1
    assert out.stderr == (f"sockdiag: not allowed to inspect pid {other_user.pid}: this root lacks "
                          "CAP_SYS_PTRACE, which reading another user's process needs\n")


def test_access_denied_tells_only_a_user_who_is_not_root_to_run_as_root():
    if os.geteuid() == 0:
        assert "run as root" not in str(AccessDenied(5))
        assert "even as root" in str(AccessDenied(5))
        out = run_unprivileged("-c", "from sockdiag import AccessDenied; print(AccessDenied(5))")
        assert out.stdout == ("not allowed to inspect pid 5: run as root or as the same user "
                              "as the process\n"), out.stderr
    else:
        assert "run as root" in str(AccessDenied(5))
