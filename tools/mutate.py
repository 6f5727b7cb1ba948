"""A mutation check you can rerun: plausible bugs put into a scratch copy,
one at a time; each must make its tests fail.

    python tools/mutate.py                 # every mutant
    python tools/mutate.py --list          # their names
    python tools/mutate.py labels drops    # the mutants whose names contain these words

The scratch copy is the working tree (tracked and untracked files, not
ignored ones) with the extension already built here (build it first:
pip install -e .; the mutants of Cython and C files also need Cython in this
Python); it goes in a temporary directory, removed at the end.
Each mutant replaces one exact piece of text in one file (a mutant whose
text is no longer found is reported as stale: update the list), the
extension is rebuilt when the file is Cython or C, the mutant's tests run
with the scratch copy first on PYTHONPATH, and the file is restored.
First, as a control, the unmutated copy must pass every test named.
Killed: the tests fail (the first failing test is shown).  Survived: they
pass, so no test sees that bug.
Exit status 0 when every mutant is killed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Optional, Sequence

ROOT = pathlib.Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str
    new: str
    tests: tuple[str, ...]  # pytest arguments


MUTANTS = (
    Mutant("export: local and remote labels swapped", "sockdiag/export.py",
           "str(sock.fd), sock.local, sock.remote)", "str(sock.fd), sock.remote, sock.local)",
           ("tests/test_export.py", "tests/test_export_oracle.py")),
    Mutant("export: unacked and unsent per-socket series swapped", "sockdiag/export.py",
           "_SOCKET_VALUES = attrgetter(*_SERIES_FIELDS)",
           "_SOCKET_VALUES = attrgetter(_SERIES_FIELDS[1], _SERIES_FIELDS[0], *_SERIES_FIELDS[2:])",
           ("tests/test_export.py", "tests/test_export_oracle.py")),
    Mutant("export: a process sum leaves out its last socket", "sockdiag/export.py",
           "self.sums.append(sum(values))", "self.sums.append(sum(values[:-1]))",
           ("tests/test_export.py", "tests/test_export_oracle.py", "tests/test_cgroup.py")),
    Mutant("export: LISTEN backlogs counted as bytes", "sockdiag/export.py",
           'connections = [s for s in sockets if s.state != "LISTEN"] if listening else sockets',
           "connections = sockets",
           ("tests/test_export.py", "tests/test_export_oracle.py")),
    Mutant("export: zero interface counters left out", "sockdiag/export.py",
           "            if value is not None:\n                family.add_metric((iface.name,), value)",
           "            if value:\n                family.add_metric((iface.name,), value)",
           ("tests/test_export.py", "tests/test_interfaces.py")),
    Mutant("accounting: a closed socket's bytes counted again at its close",
           "sockdiag/accounting.py", "usage.add(final, before)", "usage.add(final, _ZERO)",
           ("tests/test_top.py", "tests/test_budget.py")),
    Mutant("accounting: rates multiplied by the interval", "sockdiag/accounting.py",
           "v / interval_s for v in interval]", "v * interval_s for v in interval]",
           ("tests/test_top.py",)),
    Mutant("accounting: a close not counted as one", "sockdiag/accounting.py",
           "usage.closed += 1", "usage.closed += 0",
           ("tests/test_top.py", "tests/test_budget.py")),
    Mutant("accounting: a socket gone from the dump before its notification counted from zero",
           "sockdiag/accounting.py",
           "before = departed[0] if departed else _ZERO\n            pid = self._owner.pop(cookie, None)",
           "before = _ZERO\n            pid = self._owner.pop(cookie, None)",
           ("tests/test_top.py", "tests/test_budget.py")),
    Mutant("export: the per-socket cap keeps the smallest sockets", "sockdiag/export.py",
           "heapq.nlargest(max_series, candidates, key=itemgetter(0))",
           "heapq.nsmallest(max_series, candidates, key=itemgetter(0))",
           ("tests/test_export.py", "tests/test_export_oracle.py")),
    Mutant("interfaces: rx_drops read from tx_dropped (pure-Python dump)", "sockdiag/reference.py",
           "rx_drops=stats.rx_dropped,", "rx_drops=stats.tx_dropped,",
           ("tests/test_interfaces.py", "tests/test_interfaces_decode.py")),
    Mutant("budget: fires only past the budget, not at it", "sockdiag/budget.py",
           "used is not None and used >= limit", "used is not None and used > limit",
           ("tests/test_budget.py",)),
    Mutant("tracing: sport and dport read from each other", "sockdiag/tracing.py",
           '"newstate", "sport", "dport",', '"newstate", "dport", "sport",',
           ("tests/test_top_trace.py",)),
    Mutant("queue delay: unsent times the rate (Python twin)", "sockdiag/_common.py",
           "return unsent / (rate_bps / 8), limited_by", "return unsent * (rate_bps / 8), limited_by",
           ("tests/test_process_sockets.py", "tests/test_record.py",
            "tests/test_properties.py")),
    Mutant("queue delay: unsent times the rate", "sockdiag/includes/compat.h",
           "out.queue_delay_s = (double)unsent / (double)rate;",
           "out.queue_delay_s = (double)unsent * (double)rate;",
           ("tests/test_process_sockets.py",)),
    Mutant("interfaces: rx_drops read from the tx_dropped field", "sockdiag/_fast_rtnl.pxi",
           "stats[SD_STATS_RX_DROPPED], stats[SD_STATS_TX_DROPPED]))",
           "stats[SD_STATS_TX_DROPPED], stats[SD_STATS_TX_DROPPED]))",
           ("tests/test_interfaces.py", "tests/test_interfaces_decode.py")),
    Mutant("interfaces: rx_drops read from the tx_dropped field (link dump)", "sockdiag/_fast_rtnl.pxi",
           "INTERFACE_COUNTERS.put(instance, IC_RX_DROPS, stats[SD_STATS_RX_DROPPED])",
           "INTERFACE_COUNTERS.put(instance, IC_RX_DROPS, stats[SD_STATS_TX_DROPPED])",
           ("tests/test_interfaces.py", "tests/test_interfaces_decode.py")),
    Mutant("diag: unacked and unsent swapped in the SocketInfo", "sockdiag/_fast_diag.pxi",
           "SOCKET_INFO.put(socket_info, SI_UNSENT, notsent)",
           "SOCKET_INFO.put(socket_info, SI_UNSENT, unacked if unacked > 0 else 0)",
           ("tests/test_process_sockets.py", "tests/test_export_oracle.py")),
    Mutant("diag: free from the buffer size alone", "sockdiag/_fast_diag.pxi",
           "SOCKET_INFO.put(socket_info, SI_FREE, sndbuf - used if sndbuf > used else 0)",
           "SOCKET_INFO.put(socket_info, SI_FREE, sndbuf)",
           ("tests/test_process_sockets.py", "tests/test_export_oracle.py")),
    Mutant("trace: a time-extend record's delta ignored", "sockdiag/includes/trace.h",
           "                c->stamp += value;", "                c->stamp += 0;",
           ("tests/test_top_trace.py",)),
)

_BUILT = {".pyx", ".pxi", ".pxd", ".h"}


def scratch_copy(into: pathlib.Path) -> pathlib.Path:
    """The working tree and the built extension, copied under into."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    files += [str(p.relative_to(ROOT)) for p in (ROOT / "sockdiag").glob("_fast*.so")]
    files += ["sockdiag/_fast.c"]
    copy = into / "sockdiag-mutants"
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


def run(command: list[str], cwd: pathlib.Path, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(cwd), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def build(copy: pathlib.Path) -> None:
    done = run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], copy, 1800)
    if done.returncode != 0:
        raise RuntimeError("the build failed: " + (done.stderr.strip().splitlines() or ["?"])[-1])


def first_failure(copy: pathlib.Path, tests: Sequence[str], timeout: float) -> Optional[str]:
    """None when the tests pass, else the first failing test's id."""
    done = run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE", *tests],
               copy, timeout)
    if done.returncode == 0:
        return None
    lines = done.stdout.strip().splitlines()
    failed = [line.split()[1] for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return failed[0] if failed else (lines[-1] if lines else f"exit status {done.returncode}")


def check(copy: pathlib.Path, mutant: Mutant, timeout: float) -> tuple[str, str]:
    """(killed, survived, stale (its text is gone) or timeout; the test that failed)."""
    target = copy / mutant.path
    original = target.read_text()
    if original.count(mutant.old) != 1:
        return "stale", ""
    rebuilt = target.suffix in _BUILT
    # The unmutated build, put back afterwards rather than built again.
    built = {path: path.read_bytes() for path in (copy / "sockdiag").glob("_fast*.so")}
    built[copy / "sockdiag" / "_fast.c"] = (copy / "sockdiag" / "_fast.c").read_bytes()
    target.write_text(original.replace(mutant.old, mutant.new))
    try:
        if rebuilt:
            build(copy)
        failed = first_failure(copy, mutant.tests, timeout)
        return ("survived", "") if failed is None else ("killed", failed)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    finally:
        target.write_text(original)
        for path, data in built.items():
            path.write_bytes(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("words", nargs="*", help="run only the mutants whose names contain one of these")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if not args.words or any(w in m.name for w in args.words)]
    if args.list:
        print("\n".join(m.name for m in chosen))
        return 0
    if not list((ROOT / "sockdiag").glob("_fast*.so")):
        print("mutate: build the extension first (pip install -e .)", file=sys.stderr)
        return 1
    if any(pathlib.Path(m.path).suffix in _BUILT for m in chosen) and not importlib.util.find_spec("Cython"):
        print("mutate: the mutants of Cython and C files need Cython: pip install 'cython>=3,<4'",
              file=sys.stderr)
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="sockdiag-mutants-") as scratch:
        copy = scratch_copy(pathlib.Path(scratch))
        probe = run([sys.executable, "-c", "import sockdiag; print(sockdiag.__file__)"], copy, 60)
        if not probe.stdout.startswith(str(copy)):
            print(f"mutate: the scratch copy is not the sockdiag imported ({probe.stdout.strip()})",
                  file=sys.stderr)
            return 1
        try:
            # The control: unmutated, the same tests pass, or no kill means anything.
            tests = sorted({test for mutant in chosen for test in mutant.tests})
            failed = first_failure(copy, tests, args.timeout * len(tests))
            if failed is not None and "::" in failed and first_failure(copy, [failed], args.timeout) is None:
                # Passed alone: a test that fails under load; its kills are worth less.
                print(f"mutate: unmutated, {failed} failed once and then passed", file=sys.stderr)
            elif failed is not None:
                print(f"mutate: the unmutated copy fails {failed}: fix that first", file=sys.stderr)
                return 1
            for mutant in chosen:
                started = time.monotonic()
                outcome, failed = check(copy, mutant, args.timeout)
                results.append((mutant, outcome))
                print(f"{outcome:<9} {time.monotonic() - started:5.0f} s  {mutant.name}"
                      + (f"  [{failed}]" if failed else ""), flush=True)
        except KeyboardInterrupt:
            print("mutate: interrupted", file=sys.stderr)
            return 130
        except RuntimeError as err:  # a mutant that does not build is a mistake in the list
            print(f"mutate: {err}", file=sys.stderr)
            return 1
    survivors = [m for m, outcome in results if outcome != "killed"]
    print(f"\n{len(results) - len(survivors)} of {len(results)} killed")
    for mutant in survivors:
        print(f"  not killed: {mutant.name} ({mutant.path})")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
