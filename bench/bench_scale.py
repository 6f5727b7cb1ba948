"""What a refresh costs on a busy machine, from 10,000 to 100,000 TCP sockets.

    pytest bench/bench_scale.py -s

The machine is made busy by six holder processes (one process may hold at
most 20,000 fds here), each with its own listener on its own 127.0.0.0/8
address (the ephemeral range gives 28,232 ports per destination), plus:
  * 8 small processes, each a listener and 10 client connections (11 TCP
    sockets; their peers are held by this process), a UDP socket and a UNIX
    socket pair;
  * a cgroup v2 of the bench's own holding 1% of the machine's sockets.
At each size (10,000, 19,000, 50,000, 100,000 sockets) it times:
  * ``process_sockets`` of a small process: a refresh (exact requests), the
    same with every kind (its 14 TCP, UDP and UNIX sockets), and the first
    look (a dump of the machine, as every refresh was before);
  * one ``export`` scrape watching the 8 small processes, and watching 1;
  * ``sockets_of_processes`` of the 8 small processes (one pass);
  * a ``watch --cgroup`` refresh (``_watch.take_cgroup_sample``: by name),
    and the kernel-filtered dump a full pass of the cgroup takes;
  * a full dump of the machine into structs (``_fast.namespace_sockets_linux``)
    and ``ss -tinm`` (which dumps and prints the same).
The ratios are printed at the end; the table and the log-log plot
(sockdiag-scale.png in the temporary directory, its path printed: copy it
over docs/scale.png to renew the page's) are made from the same figures.  Every holder, socket
and cgroup is removed at the end, also on error; a killed run's cgroup is
removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import pytest

SIZES = (10_000, 19_000, 50_000, 100_000)
HOLDERS = 6
HOLDER_MAX_CONNECTIONS = 9_500  # 19,001 fds: under the 20,000 limit
SMALL_PROCESSES = 8
SMALL_CONNECTIONS = 10
CGROUP_SHARE = 0.01
BUILD_TIMEOUT_S = 600
CGROUP_PREFIX = "sockdiag-bench-"
FIGURES: dict[tuple[int, str], float] = {}  # (size, figure) -> median seconds

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


def hold(address: str) -> None:
    """Child: a listener on address; on each stdin line N, grow to N
    connections to it (both ends held here) and print the sockets held."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen(4096)
    held = [listener]
    for line in sys.stdin:
        wanted = int(line)
        while (len(held) - 1) // 2 < wanted:
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            held += [client, server]
        print(len(held), flush=True)
    # Reset rather than close: tens of thousands of TIME_WAIT sockets would
    # outlive the run by a minute and slow every dump of the machine.
    abort = struct.pack("ii", 1, 0)
    for sock in held:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, abort)
        sock.close()


def small(port: int) -> None:
    """Child: a listener and SMALL_CONNECTIONS connections to port, a UDP
    socket and a UNIX socket pair; waits for stdin to close."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(SMALL_CONNECTIONS)]
    datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagram.bind(("127.0.0.1", 0))
    pair = socket.socketpair()
    print(len(held) + 1, flush=True)
    sys.stdin.read()
    del listener, held, datagram, pair


class Holder:
    def __init__(self, address: str, cgroup: str | None = None) -> None:
        self.child = subprocess.Popen([sys.executable, __file__, "hold", address],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      preexec_fn=(lambda: _join(cgroup)) if cgroup else None)
        self.sockets = 1

    def ask(self, connections: int) -> None:
        self.child.stdin.write(f"{connections}\n")
        self.child.stdin.flush()

    def answer(self) -> int:
        line = self.child.stdout.readline()
        if not line:
            raise RuntimeError("a socket holder died (fd limit? port range?)")
        self.sockets = int(line)
        return self.sockets

    def end(self) -> None:
        self.child.stdin.close()
        try:
            self.child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()


def _join(cgroup: str) -> None:
    """preexec_fn: enter the cgroup before any socket is made."""
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def _machine_sockets() -> int:
    """TCP sockets of this namespace, as a full dump sees them."""
    from sockdiag import _fast, _linux, reference

    return len(_fast.namespace_sockets_linux(_linux.state_mask(None)))


def _remove_cgroup(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        with open(os.path.join(path, "cgroup.procs")) as f:
            for pid in f.read().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), 9)
        for _ in range(100):
            try:
                os.rmdir(path)
                return
            except OSError:
                time.sleep(0.05)  # killed processes leave the cgroup a moment later


class BusyMachine:
    """The holders, the small processes and the cgroup; grow() to a size."""

    def __init__(self) -> None:
        from sockdiag import cgroups

        if os.geteuid() != 0:
            pytest.skip("the cgroup of the bench needs root")
        mount = cgroups.cgroup2_mount()
        for entry in os.listdir(mount):
            if entry.startswith(CGROUP_PREFIX) and not os.path.exists(f"/proc/{entry[len(CGROUP_PREFIX):]}"):
                _remove_cgroup(os.path.join(mount, entry))
        self.cgroup_path = os.path.join(mount, f"{CGROUP_PREFIX}{os.getpid()}")
        os.mkdir(self.cgroup_path)
        self.holders: list[Holder] = []
        self.smalls: list[subprocess.Popen] = []
        self.sink = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.peers: list[socket.socket] = []
        self.cgroup_holder = Holder("127.0.1.100", self.cgroup_path)
        self.holders = [Holder(f"127.0.{index + 1}.1") for index in range(HOLDERS)]
        for _ in range(SMALL_PROCESSES):
            child = subprocess.Popen([sys.executable, __file__, "small", str(self.sink.getsockname()[1])],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.smalls.append(child)
            self.peers += [self.sink.accept()[0] for _ in range(SMALL_CONNECTIONS)]
            assert int(child.stdout.readline()) == SMALL_CONNECTIONS + 1
        self.cgroup = cgroups.open_cgroup(self.cgroup_path)

    def grow(self, size: int) -> int:
        """Grow the machine to about size TCP sockets; the number a dump sees."""
        started = time.monotonic()
        cgroup_connections = int(size * CGROUP_SHARE) // 2
        self.cgroup_holder.ask(cgroup_connections)
        self.cgroup_holder.answer()
        rest = size - _machine_sockets()
        for holder in self.holders:
            connections = (holder.sockets - 1) // 2 + max(rest, 0) // 2 // HOLDERS
            if connections > HOLDER_MAX_CONNECTIONS:
                raise RuntimeError(f"{size} sockets need more than {HOLDERS} holders")
            holder.ask(connections)
        for done, holder in enumerate(self.holders, 1):
            holder.answer()
            elapsed = time.monotonic() - started
            print(f"\n  building {size:,} sockets: {done}/{HOLDERS} holders done, {elapsed:.0f} s",
                  file=sys.stderr, flush=True)
            if elapsed > BUILD_TIMEOUT_S:
                raise RuntimeError(f"building {size} sockets took over {BUILD_TIMEOUT_S} s")
        return _machine_sockets()

    def close(self) -> None:
        for child in self.smalls:
            child.stdin.close()
            child.wait(timeout=30)
        for holder in self.holders + [self.cgroup_holder]:
            holder.end()
        for peer in self.peers:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            peer.close()
        self.sink.close()
        _remove_cgroup(self.cgroup_path)


@pytest.fixture(scope="module")
def machine():
    busy = None
    try:
        busy = BusyMachine()
        yield busy
    finally:
        if busy is not None:
            busy.close()


def _median(benchmark, function, rounds: int) -> float:
    from testsupport.benchmarks import per_call

    return per_call(benchmark, function, rounds=rounds)


MEASURES = ("full dump", "ss -tinm", "process_sockets, refresh", "process_sockets, every kind, refresh",
            "process_sockets, first look",
            "sockets_of_processes, 8 small processes", "export scrape, 8 small processes",
            "export scrape, 1 small process", "watch --cgroup refresh", "cgroup: kernel-filtered dump")


@pytest.mark.parametrize("size, measure", [(size, measure) for size in SIZES for measure in MEASURES])
def test_scale(benchmark, machine, ratios, size, measure):
    from sockdiag import _fast, _linux, _watch, export, exposition

    if getattr(machine, "size", None) != size:
        machine.size = size
        machine.dumped = machine.grow(size)
        print(f"\n  {machine.dumped:,} TCP sockets on the machine", file=sys.stderr)
    mask = _linux.state_mask(None)
    small_pid = machine.smalls[0].pid
    rounds = 5 if size >= 50_000 else 9
    if measure == "full dump":
        figure = _median(benchmark, lambda: _fast.namespace_sockets_linux(mask), rounds)
    elif measure == "ss -tinm":
        if shutil.which("ss") is None:
            pytest.skip("needs ss")
        figure = _median(benchmark, lambda: subprocess.run(["ss", "-tinm"], stdout=subprocess.DEVNULL,
                                                           check=True), 3)
    elif measure == "process_sockets, refresh":
        import sockdiag

        assert len(sockdiag.process_sockets(small_pid)) == SMALL_CONNECTIONS + 1
        figure = _median(benchmark, lambda: sockdiag.process_sockets(small_pid), 50)
    elif measure == "process_sockets, every kind, refresh":
        import sockdiag

        kinds = ("tcp", "udp", "unix")
        assert len(sockdiag.process_sockets(small_pid, kinds=kinds)) == SMALL_CONNECTIONS + 4
        figure = _median(benchmark, lambda: sockdiag.process_sockets(small_pid, kinds=kinds), 50)
    elif measure == "process_sockets, first look":
        figure = _median(benchmark, lambda: _fast.process_sockets_linux(small_pid, mask), rounds)
    elif measure == "sockets_of_processes, 8 small processes":
        import sockdiag

        pids = [child.pid for child in machine.smalls]
        sockdiag.sockets_of_processes(pids)
        figure = _median(benchmark, lambda: sockdiag.sockets_of_processes(pids), 30)
    elif measure == "cgroup: kernel-filtered dump":
        bytecode = _linux.filter_bytecode([machine.cgroup.id])
        figure = _median(benchmark, lambda: _fast.namespace_sockets_linux(mask, bytecode), rounds)
    elif measure.startswith("export scrape"):
        pids = [child.pid for child in machine.smalls][:SMALL_PROCESSES if "8" in measure else 1]
        scrape = export.registry(export.Collector(pids))  # made once, as export.serve makes it
        exposition.text_format(scrape.collect())  # the first scrape learns the sockets' names
        figure = _median(benchmark, lambda: exposition.text_format(scrape.collect()), 30)
    else:
        sample = _watch.take_cgroup_sample(machine.cgroup)
        assert abs(len(sample.sockets) - size * CGROUP_SHARE) <= size * CGROUP_SHARE * 0.1 + 2
        figure = _median(benchmark, lambda: _watch.take_cgroup_sample(machine.cgroup), 20)
    FIGURES[size, measure] = figure
    ratios.add(f"{size:,} sockets ({machine.dumped:,} dumped)", measure, figure)


@pytest.mark.parametrize("measure", ["exact requests, per socket", "readlink of /proc/<pid>/fd/N"])
def test_per_process_floor(benchmark, machine, measure):
    """What each watched process costs at least, whatever sockdiag does above
    the kernel: the exact requests for its sockets and the readlink of each
    of its fds (the 8 small processes' 88 sockets)."""
    from sockdiag import _fast, _linux, reference

    if getattr(machine, "size", None) is None:
        machine.size, machine.dumped = SIZES[0], machine.grow(SIZES[0])
    mask = _linux.state_mask(None)
    held = [(child.pid, fd, inode) for child in machine.smalls
            for inode, fd in reference.socket_fds(child.pid).items()]
    if measure.startswith("exact"):
        names = {}
        _fast.namespace_sockets_linux(mask, None, 0, names)
        asked = [names[inode] for _, _, inode in held]
        assert len(_fast.ask_sockets_linux(asked, mask)[0]) == len(asked)
        figure = _median(benchmark, lambda: _fast.ask_sockets_linux(asked, mask), 50) / len(asked)
    else:
        links = [f"/proc/{pid}/fd/{fd}" for pid, fd, _ in held]
        figure = _median(benchmark, lambda: [os.readlink(link) for link in links], 50) / len(links)
    print(f"\n{measure}: {figure * 1e6:.2f} us ({len(held)} sockets of {SMALL_PROCESSES} processes)")


def test_report():
    """Not a benchmark: the targets, the table for docs/perf.md and the plot."""
    if not FIGURES:
        pytest.skip("nothing measured")
    lines = []
    for size in SIZES:
        full = FIGURES.get((size, "full dump"))
        if full is None:
            continue
        refresh = FIGURES[size, "process_sockets, refresh"]
        lines.append(f"{size:,}: process_sockets(11 sockets) / full dump = 1/{full / refresh:.0f}"
                     + (" (target <= 1/50)" if size == 19_000 else " (target <= 1/200)" if size == 100_000 else ""))
        every_kind = FIGURES.get((size, "process_sockets, every kind, refresh"))
        if every_kind is not None:
            lines.append(f"{size:,}: process_sockets(14 sockets, every kind) / full dump = "
                         f"1/{full / every_kind:.0f}" + (" (target <= 1/50)" if size == 19_000 else ""))
        lines.append(f"{size:,}: sockets_of_processes(8 small) / process_sockets(1 small) = "
                     f"{FIGURES[size, 'sockets_of_processes, 8 small processes'] / refresh:.2f}x")
        lines.append(f"{size:,}: export 8 / export 1 = "
                     f"{FIGURES[size, 'export scrape, 8 small processes'] / FIGURES[size, 'export scrape, 1 small process']:.2f}x"
                     " (target <= 1.3x)")
        lines.append(f"{size:,}: watch --cgroup (1%) / full dump = 1/{full / FIGURES[size, 'watch --cgroup refresh']:.0f}"
                     " (target <= 1/20); the kernel-filtered dump alone: "
                     f"1/{full / FIGURES[size, 'cgroup: kernel-filtered dump']:.1f}")
    print("\n" + "\n".join(lines))
    header = "| work | " + " | ".join(f"{size:,} sockets" for size in SIZES) + " |"
    table = [header, "|---|" + "---|" * len(SIZES)]
    for measure in MEASURES:
        cells = [FIGURES.get((size, measure)) for size in SIZES]
        table.append(f"| {measure} | " + " | ".join("–" if c is None else f"{c * 1e3:.2f} ms" for c in cells) + " |")
    print("\n".join(table))
    _plot()


def _plot() -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(10, 5.5))
    for measure in MEASURES:
        points = [(size, FIGURES[size, measure] * 1e3) for size in SIZES if (size, measure) in FIGURES]
        if points:
            axes.plot(*zip(*points), marker="o", label=measure)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("TCP sockets on the machine")
    axes.set_ylabel("ms per call (median)")
    axes.set_title("What a call costs as the machine grows (Linux 6.18, 2 shared cores)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    figure.tight_layout()
    # Not into docs/: a run must not change the repository behind the user's back.
    path = os.path.join(tempfile.gettempdir(), "sockdiag-scale.png")
    figure.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2])
    else:
        small(int(sys.argv[2]))
