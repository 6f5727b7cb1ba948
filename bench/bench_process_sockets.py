"""process_sockets on a process holding ~19,000 TCP sockets, against its floor and peers.

    pytest bench/bench_process_sockets.py

Baselines beside the hot path (same fixture process, 9,500 loopback
connections = 19,001 sockets with the listener):
  * the pure-Python equivalent, sockdiag.reference.process_sockets;
  * the raw C floor: floor_process_sockets.c (built here with the machine's cc,
    called through ctypes): a readlink scan of the fds plus one sock_diag dump
    per family with INFO + SKMEMINFO, nothing else;
  * the same floor on two threads, split as process_sockets splits the work
    (floor_process_sockets_threaded.c): the scan beside the dump;
  * ``ss -tinmp``, psutil ``Process.net_connections``, pyroute2 ``DiagSocket``
    (the dump only: pyroute2 has no pid filter);
  * the whole ``sockdiag watch PID --once --json`` process, paired in the
    same rounds with ``ss -tinmp`` and bare python; beside them ``export
    --once`` of 8 small processes (11 sockets each) and of 1.
Then the CPU cost of refreshing a live view of a process with 1,000 sockets.
The ratios are printed at the end (run with -s to see them) and kept in the
benchmark JSON's extra_info.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sockdiag
from sockdiag import _linux, _watch, reference
from sockdiag.views import watch as watch_view

HERE = Path(__file__).resolve().parent
BUILD = HERE / "_build"
CONNECTIONS = 9_500
REFRESH_CONNECTIONS = 500  # 1,000 sockets
MEDIANS: dict[str, float] = {}

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


def hold(connections: int) -> None:
    """Child process: hold connections loopback connections until stdin closes."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * connections + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
        connections = min(connections, (min(wanted, hard) - 64) // 2)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    held = [listener]
    for _ in range(connections):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        held += [client, server]
    print(len(held), flush=True)
    sys.stdin.read()
    # Reset rather than close: 9,500 TIME_WAIT sockets would outlive the
    # benchmark by a minute and slow every dump of the machine's sockets.
    abort = struct.pack("ii", 1, 0)
    for sock in held:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, abort)
        sock.close()


@contextlib.contextmanager
def holder(connections: int):
    """(pid, number of TCP sockets) of a child process holding connections."""
    child = subprocess.Popen([sys.executable, __file__, str(connections)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if not line:
            pytest.fail("the socket-holding child failed to start")
        yield child.pid, int(line)
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def record(benchmark, name: str) -> None:
    if benchmark.stats is not None:
        MEDIANS[name] = benchmark.stats.stats.median


@pytest.fixture(scope="class")
def many_sockets():
    """(pid, number of TCP sockets) of a child holding ~19,000 sockets."""
    with holder(CONNECTIONS) as held:
        yield held


def build_floor(name: str):
    """The C function name of bench/name.c, built with the machine's cc."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        pytest.skip("needs a C compiler for the raw C floor")
    BUILD.mkdir(exist_ok=True)
    library = BUILD / f"{name}.so"
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-pthread", "-o", str(library),
                    str(HERE / f"{name}.c")], check=True)
    function = getattr(ctypes.CDLL(str(library)), name)
    function.argtypes = [ctypes.c_int]
    return function


@pytest.fixture(scope="class")
def eight_small_processes():
    """The pids of 8 processes holding 11 TCP sockets each."""
    # Imported here: this file also runs as the holder child, without testsupport on its path.
    from testsupport.children import ELEVEN_SOCKETS

    children = []
    try:
        for _ in range(8):
            children.append(subprocess.Popen([sys.executable, "-c", ELEVEN_SOCKETS], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, text=True))
            assert children[-1].stdout.readline().strip() == "ready"
        yield [child.pid for child in children]
    finally:
        for child in children:
            child.stdin.close()
            child.wait(timeout=30)


@pytest.fixture(scope="session")
def floor_library():
    return build_floor("floor_process_sockets")


@pytest.fixture(scope="session")
def threaded_floor_library():
    return build_floor("floor_process_sockets_threaded")


class TestNineteenThousandSockets:
    def test_raw_c_floor(self, benchmark, many_sockets, floor_library):
        pid, count = many_sockets
        assert benchmark(floor_library, pid) == count
        record(benchmark, "floor")

    def test_raw_c_floor_two_threads(self, benchmark, many_sockets, threaded_floor_library):
        pid, count = many_sockets
        assert benchmark(threaded_floor_library, pid) == count
        record(benchmark, "floor, two threads")

    def test_process_sockets(self, benchmark, many_sockets):
        pid, count = many_sockets
        assert len(benchmark(sockdiag.process_sockets, pid)) == count
        record(benchmark, "process_sockets")

    def test_pure_python_reference(self, benchmark, many_sockets):
        pid, count = many_sockets
        mask = _linux.state_mask(None)
        found = benchmark.pedantic(reference.process_sockets, (pid, mask), rounds=3)
        assert len(found) == count
        record(benchmark, "pure Python (reference.py)")

    @pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss")
    def test_whole_processes_paired(self, benchmark, many_sockets, eight_small_processes,
                                    threaded_floor_library):
        """Whole processes run in turn in each round (their medians under the
        same load): ``sockdiag watch PID --once --json`` against ``ss -tinmp``,
        bare python, and the floor of any Python tool (bare python calling the
        two-thread C floor: the fd scan beside the dump, no record, no
        output), and ``export --once`` of the 8 small processes against the
        same of 1, on this machine of ~19,000 sockets."""
        from testsupport.benchmarks import paired_process_medians

        pid, count = many_sockets
        script = str(Path(sys.executable).with_name("sockdiag"))
        small = [str(child_pid) for child_pid in eight_small_processes]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python + C floor (two threads)": [
                sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(BUILD / 'floor_process_sockets_threaded.so')!r})"
                f".floor_process_sockets_threaded({pid})"],
            "watch --once --json": [sys.executable, script, "watch", str(pid), "--once", "--json"],
            "ss -tinmp": ["ss", "-tinmp"],
            "export --once, 1 small pid": [sys.executable, script, "export", "--once", "--pid", small[0]],
            "export --once, 8 small pids": [sys.executable, script, "export", "--once",
                                            *(arg for p in small for arg in ("--pid", p))],
        }
        rounds = 1 if benchmark.disabled else 9
        medians = benchmark.pedantic(paired_process_medians, (commands, rounds, 1), rounds=1, iterations=1)
        for name, (wall, cpu) in medians.items():
            MEDIANS[name] = wall
            MEDIANS[f"{name}, CPU"] = cpu
        lines = [f"{name}: {wall * 1e3:.1f} ms wall, {cpu * 1e3:.1f} ms CPU (medians of {rounds} paired rounds)"
                 for name, (wall, cpu) in medians.items()]
        lines.append("ss -tinmp / watch --once --json: "
                     f"{medians['ss -tinmp'][0] / medians['watch --once --json'][0]:.2f}x wall, "
                     f"{medians['ss -tinmp'][1] / medians['watch --once --json'][1]:.2f}x CPU (target >= 2.5x)")
        lines.append("ss -tinmp / (python + C floor): "
                     f"{medians['ss -tinmp'][0] / medians['python + C floor (two threads)'][0]:.2f}x wall: "
                     "the most any Python process doing the same kernel work can be faster")
        lines.append("export --once, 8 / 1 small pids: "
                     f"{medians['export --once, 8 small pids'][0] / medians['export --once, 1 small pid'][0]:.2f}x wall, "
                     f"{medians['export --once, 8 small pids'][1] / medians['export --once, 1 small pid'][1]:.2f}x CPU "
                     "(target <= 1.3x)")
        benchmark.extra_info["whole_processes"] = lines
        print("\n" + "\n".join(lines))

    def test_psutil_net_connections(self, benchmark, many_sockets):
        psutil = pytest.importorskip("psutil")
        pid, count = many_sockets
        process = psutil.Process(pid)
        found = benchmark.pedantic(lambda: process.net_connections(kind="tcp"), rounds=3)
        assert len(found) == count
        record(benchmark, "psutil net_connections")

    def test_pyroute2_get_sock_stats(self, benchmark, many_sockets):
        pyroute2 = pytest.importorskip("pyroute2")
        extensions = (1 << (2 - 1)) | (1 << (7 - 1))  # INET_DIAG_INFO | INET_DIAG_SKMEMINFO

        def dump():
            with pyroute2.DiagSocket() as diag:
                diag.bind()
                return diag.get_sock_stats(family=socket.AF_INET, extensions=extensions)

        assert len(benchmark.pedantic(dump, rounds=1)) >= many_sockets[1]
        record(benchmark, "pyroute2 get_sock_stats")

    def test_ratios(self, benchmark):
        """Not a benchmark: the ratios of the medians measured above."""
        if "floor" not in MEDIANS or "process_sockets" not in MEDIANS:
            pytest.skip("benchmarks disabled or skipped")
        base = MEDIANS["process_sockets"]
        lines = [f"process_sockets / raw C floor: {base / MEDIANS['floor']:.2f}x (target <= 1.5x)"]
        if "floor, two threads" in MEDIANS:
            lines.append(f"process_sockets / raw C floor on two threads: "
                         f"{base / MEDIANS['floor, two threads']:.2f}x")
        for name in ("pure Python (reference.py)", "ss -tinmp", "psutil net_connections",
                     "pyroute2 get_sock_stats"):
            if name in MEDIANS:
                lines.append(f"{name} / process_sockets: {MEDIANS[name] / base:.1f}x")
        if "ss -tinmp" in MEDIANS and "watch --once --json" in MEDIANS:
            lines.append(f"ss -tinmp / sockdiag watch --once --json process: "
                         f"{MEDIANS['ss -tinmp'] / MEDIANS['watch --once --json']:.2f}x (target >= 2.5x)")
        benchmark.extra_info["ratios"] = lines
        benchmark.extra_info["medians_s"] = dict(MEDIANS)
        print("\n" + "\n".join(lines))


@pytest.fixture(scope="class")
def thousand_sockets():
    with holder(REFRESH_CONNECTIONS) as held:
        yield held


class TestLiveRefresh:
    def test_refresh_1000_sockets_cpu(self, benchmark, thousand_sockets):
        """One refresh of the live view (sample + render), and its CPU share at 1 s."""
        pid, count = thousand_sockets
        state = {"previous": None}

        def refresh():
            sample = _watch.take_sample(pid, "holder")
            watch_view.render(sample, state["previous"], max_lines=50, max_width=160)
            state["previous"] = sample

        refreshes = 20
        cpu_before = time.process_time()
        for _ in range(refreshes):
            refresh()
        cpu_per_refresh = (time.process_time() - cpu_before) / refreshes
        benchmark(refresh)
        benchmark.extra_info["sockets"] = count
        benchmark.extra_info["cpu_s_per_refresh"] = cpu_per_refresh
        benchmark.extra_info["cpu_share_at_1s_interval"] = cpu_per_refresh / 1.0
        print(f"\nrefresh of {count} sockets: {cpu_per_refresh * 1e3:.2f} ms CPU, "
              f"{cpu_per_refresh * 100:.2f}% of one core at a 1 s interval (target < 5%)")


if __name__ == "__main__":
    hold(int(sys.argv[1]))
