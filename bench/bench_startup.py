"""Start-up: what a one-shot `sockdiag` command pays before and around its work.

    pytest bench/bench_startup.py -s

Whole processes, each paired with a bare ``python -c pass`` (the same
interpreter and site packages): within each round every command runs once,
in turn, so the medians are taken under the same load of a shared machine,
and each median minus bare python's is what sockdiag adds.  Bytecode
caching is on, as in an installed package.  The commands:
  * ``import sockdiag`` (the library without the CLI);
  * ``sockdiag --version`` (the console script: click and the package);
  * ``sockdiag watch PID --once --json`` of a process holding 11 TCP
    sockets (a listener and 5 connections to it).
Then ``-X importtime``'s top entries of each (the least self time of 5
runs): where the rest of the start goes.

Targets: ``sockdiag --version`` <= 25 ms over bare python; the watch of the
11-socket process <= 40 ms over bare python.  That watch's first look dumps
every TCP socket of the machine (nothing tells a new process's sockets
apart before that), so its time grows with the machine's sockets, printed
beside the figures.  Which modules ``import
sockdiag`` loads is a test (tests/test_layout.py), not a timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.benchmarks import importtime_top, paired_process_medians
from testsupport.children import ELEVEN_SOCKETS

SCRIPT = str(Path(sys.executable).with_name("sockdiag"))
TARGETS_MS = {"sockdiag --version": 25.0, "sockdiag watch PID --once --json (11 sockets)": 40.0}

@pytest.fixture(scope="module")
def eleven_sockets():
    child = subprocess.Popen([sys.executable, "-c", ELEVEN_SOCKETS], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        yield child.pid
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def test_start_up(benchmark, eleven_sockets):
    if not Path(SCRIPT).exists():
        pytest.skip(f"no console script at {SCRIPT} (pip install -e .)")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import sockdiag": [sys.executable, "-c", "import sockdiag"],
        "sockdiag --version": [sys.executable, SCRIPT, "--version"],
        "sockdiag watch PID --once --json (11 sockets)":
            [sys.executable, SCRIPT, "watch", str(eleven_sockets), "--once", "--json"],
        # Every kind is the default: what reading TCP alone would save.
        "sockdiag watch PID --once --json --kind tcp (11 sockets)":
            [sys.executable, SCRIPT, "watch", str(eleven_sockets), "--once", "--json", "--kind", "tcp"],
    }
    rounds = 3 if benchmark.disabled else 31
    medians = benchmark.pedantic(paired_process_medians, (commands, rounds), rounds=1, iterations=1)
    bare_wall, bare_cpu = medians["python -c pass"]
    with open("/proc/net/sockstat") as f:
        # The watch's first look dumps the machine's sockets: its time grows with them.
        tcp_in_use = next(line.split()[2] for line in f if line.startswith("TCP:"))
    lines = [f"python -c pass: {bare_wall * 1e3:.1f} ms wall, {bare_cpu * 1e3:.1f} ms CPU "
             f"(medians of {rounds} paired rounds; {tcp_in_use} IPv4 TCP sockets in use on the machine)"]
    for name, (wall, cpu) in medians.items():
        if name == "python -c pass":
            continue
        over_ms = (wall - bare_wall) * 1e3
        target = TARGETS_MS.get(name)
        verdict = ("" if target is None
                   else f"  (target <= {target:.0f} ms over: {'met' if over_ms <= target else 'NOT met'})")
        lines.append(f"{name}: {wall * 1e3:.1f} ms wall, {over_ms:.1f} ms over bare python; "
                     f"CPU {cpu * 1e3:.1f} ms, {(cpu - bare_cpu) * 1e3:.1f} ms over{verdict}")
    for name, argv in commands.items():
        if name != "python -c pass":
            lines.append(f"-X importtime, {name}:")
            lines += ["    " + line for line in importtime_top(argv, runs=1 if benchmark.disabled else 5)]
    benchmark.extra_info["start_up"] = lines
    print("\n" + "\n".join(lines))
