"""Shared bench fixtures: a full loopback connection, the raw C floor, ratio report.

Each bench records its per-call median with `ratios.add(group, name, seconds)`;
at the end of the run a table per group prints every entry's time and its
ratio to the group's first entry (the floor), the figures docs/perf.md quotes.
"""

from __future__ import annotations

import ctypes
import pathlib
import shutil
import subprocess
from collections import defaultdict

import pytest

BUILD = pathlib.Path(__file__).resolve().parent / "_build"


def compile_c(source: str, shared: bool = True) -> pathlib.Path:
    """Compile bench/<source> with the machine's C compiler; the output's path."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler for the raw C floor")
    BUILD.mkdir(exist_ok=True)
    src = pathlib.Path(__file__).resolve().parent / source
    out = BUILD / (src.stem + (".so" if shared else ""))
    flags = ["-O2", "-shared", "-fPIC"] if shared else ["-O2"]
    subprocess.run([compiler, *flags, "-o", str(out), str(src)], check=True)
    return out


class Ratios:
    def __init__(self) -> None:
        self.groups: dict[str, list[tuple[str, float]]] = defaultdict(list)

    def add(self, group: str, name: str, seconds: float) -> None:
        self.groups[group].append((name, seconds))

    def lines(self) -> list[str]:
        out = []
        for group, entries in self.groups.items():
            floor = entries[0][1]
            out.append(f"{group}:")
            for name, seconds in entries:
                out.append(f"  {name:<45} {seconds * 1e6:12.3f} us  {seconds / floor:8.2f}x")
        return out


_RATIOS = Ratios()


@pytest.fixture(scope="session")
def ratios() -> Ratios:
    return _RATIOS


def pytest_terminal_summary(terminalreporter):
    if _RATIOS.groups:
        terminalreporter.section("sockdiag ratios (per call; x = times the first row)")
        for line in _RATIOS.lines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def full_connection():
    """A loopback TCP client whose send buffer is full: nobody reads."""
    from testsupport.loopback import connected_pair, fill

    client, server = connected_pair()
    fill(client)
    yield client
    client.close()
    server.close()


@pytest.fixture(scope="session")
def raw_sockcalls():
    return ctypes.CDLL(str(compile_c("raw_sockcalls.c")))
