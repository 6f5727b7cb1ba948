"""The writer contract of the standard output: a write that fails (ENOSPC,
EPIPE) is one line and a non-zero exit, never a traceback; a file holds whole
samples, or nothing (`export --once` for the textfile collector)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import mounted_tmpfs
from testsupport.terminal import SOCKDIAG

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")


def sockdiag(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), stderr=subprocess.PIPE, text=True, timeout=60, **kwargs)


@pytest.fixture
def nearly_full(tmp_path):
    """A 12 KiB tmpfs with 8 KiB free: an exposition (about 10 KB) does not fit."""
    with mounted_tmpfs(tmp_path, "12k") as mount:
        (mount / "fill").write_bytes(bytes(4096))
        yield mount


def test_export_once_onto_a_nearly_full_disk_leaves_nothing(nearly_full):
    """The textfile collector never reads half an exposition: the file is cut back to empty."""
    path = nearly_full / "sockdiag.prom"
    with open(path, "w") as out:
        done = sockdiag("export", "--once", "--pid", str(os.getpid()), stdout=out)
    assert done.returncode == 1
    assert done.stderr == "sockdiag: cannot write the output: No space left on device\n"
    assert path.stat().st_size == 0


def test_export_once_appended_keeps_what_was_there(nearly_full):
    path = nearly_full / "sockdiag.prom"
    path.write_text("# kept\n")
    with open(path, "a") as out:
        done = sockdiag("export", "--once", "--pid", str(os.getpid()), stdout=out)
    assert done.returncode == 1
    assert path.read_text() == "# kept\n"


@pytest.mark.parametrize("command", [["watch", str(os.getpid())], ["top", "-i", "0.1"], ["ifstat", "-i", "0.1"]],
                         ids=["watch", "top", "ifstat"])
def test_json_onto_a_full_disk_is_one_line(command):
    with open("/dev/full", "w") as out:
        done = sockdiag(*command, "--json", "-n", "2", stdout=out)
    assert done.returncode == 1
    assert done.stderr == "sockdiag: cannot write the output: No space left on device\n"


def test_a_closed_pipe_is_one_line():
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = sockdiag("watch", str(os.getpid()), "--json", "-n", "2", "-i", "0.1", stdout=writer)
    finally:
        os.close(writer)
    assert done.returncode == 1
    assert done.stderr == "sockdiag: cannot write the output: Broken pipe\n"


def test_a_table_onto_a_full_disk_keeps_whole_samples(nearly_full):
    """Samples already written stay whole; the one that did not fit is cut away."""
    path = nearly_full / "ifstat.txt"
    with open(path, "w") as out:
        done = sockdiag("ifstat", "-i", "0.01", "-n", "400", stdout=out)
    assert done.returncode == 1
    assert done.stderr == "sockdiag: cannot write the output: No space left on device\n"
    text = path.read_text()
    assert text.endswith("\n") and text.count("sockdiag ifstat ") >= 2
    assert all(screen.startswith("sockdiag ifstat ") for screen in text.rstrip("\n").split("\n\n"))
