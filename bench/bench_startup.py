"""Start-up of the `sockdiag` command: what a one-shot `watch --once` pays before any work.

    pytest bench/bench_startup.py -s

Baselines beside it: the interpreter alone (``python -c pass``, with the
same site packages) and ``import sockdiag`` (the library without the CLI).
The import of ``sockdiag.cli.watch`` is what ``sockdiag watch`` loads; the
other commands' modules are imported only when they are invoked.  The
whole command ``sockdiag watch PID --once --json`` (this process's pid: a
few sockets) is measured too: the live views' keys, the recorder and the
plots must add nothing to it.  For a per-module breakdown:
``python -X importtime -c "import sockdiag.cli.watch"``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

MEDIANS: dict[str, float] = {}


def run_python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)


WATCH_ONCE_JSON = (f"import sys; sys.argv[1:] = ['watch', '{os.getpid()}', '--once', '--json']; "
                   "from sockdiag.cli import main; main()")


@pytest.mark.parametrize("name, code", [
    ("python -c pass", "pass"),
    ("import sockdiag", "import sockdiag"),
    ("import sockdiag.cli.watch", "import sockdiag.cli.watch"),
    ("sockdiag watch PID --once --json", WATCH_ONCE_JSON),
])
def test_start_up(benchmark, name, code):
    benchmark.pedantic(run_python, (code,), rounds=15, warmup_rounds=2)
    MEDIANS[name] = benchmark.stats.stats.median


def test_import_cost(benchmark):
    """Not a benchmark: the imports' share, each median minus the interpreter's."""
    if len(MEDIANS) < 4:
        pytest.skip("benchmarks disabled or skipped")
    base = MEDIANS["python -c pass"]
    lines = [f"{name}: {1e3 * (MEDIANS[name] - base):.1f} ms on top of the interpreter's "
             f"{1e3 * base:.1f} ms" for name in ("import sockdiag", "import sockdiag.cli.watch",
                                                 "sockdiag watch PID --once --json")]
    benchmark.extra_info["imports"] = lines
    print("\n" + "\n".join(lines))
