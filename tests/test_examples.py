"""Every script in examples/ runs (loopback only, bounded time) and prints what its docstring shows."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest


from conftest import requires_linux

pytestmark = requires_linux

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TESTED = {"bulk_upload.py", "asyncio_lowat.py", "watch_child.py", "plot_recording.py",
          "lowat_tuner.py"}
NUMBER = r"-?\d+(?:\.\d+)?"


def run(name: str, *args: str, cwd=None) -> list[str]:
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True,
                            text=True, timeout=60, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout.splitlines()


def table_rows(lines: list[str], header: str) -> list[list[str]]:
    """The cells of the table rows under the header line (tabulate's plain layout)."""
    start = next(i for i, line in enumerate(lines) if line.split() == header.split())
    assert set(lines[start + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[start + 2:]:
        if not re.match(r"\s*-?\d|\s*lowat", line):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def test_every_example_is_tested_and_shows_its_output():
    names = {p.name for p in EXAMPLES.glob("*.py")}
    assert names == TESTED
    for name in names:
        doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
        assert f"$ python examples/{name}" in doc, name


def test_bulk_upload():
    lines = run("bulk_upload.py", "--megabytes", "3", "--read-rate", "4096", "--every", "0.05")
    assert lines[0] == "uploading 3 MiB to a reader taking 4096 KiB/s"
    assert re.fullmatch(rf"sendall returned after {NUMBER} s", lines[1])
    rows = table_rows(lines, "time_s unacked_kib unsent_kib free_kib size_kib queue_delay_ms")
    assert len(rows) >= 2 and all(len(row) == 6 for row in rows)
    assert any(float(row[2]) > 0 for row in rows)  # the buffer filled
    assert re.fullmatch(rf"samples \d+ \(dropped 0\) over {NUMBER} s; buffer full for {NUMBER} s", lines[-3])
    assert re.fullmatch(rf"unsent p50/p99/max: {NUMBER} / {NUMBER} / {NUMBER} KiB", lines[-2])
    assert re.fullmatch(rf"queue delay p50/p99/max: {NUMBER} / {NUMBER} / {NUMBER} ms", lines[-1])


def test_asyncio_lowat():
    lines = run("asyncio_lowat.py", "--seconds", "0.6", "--rate", "1024")
    assert lines[0] == "client reads 1024 KiB/s for 0.6 s per round"
    rows = table_rows(lines, "round messages latency_p50_ms latency_max_ms unsent_p50_kib "
                             "unsent_max_kib queue_delay_p50_ms")
    assert [row[0] for row in rows] == ["lowat off", "lowat 16 KiB"]
    off, lowat = ([float(cell) for cell in row[1:]] for row in rows)
    # What the docstring claims: far less unsent and fresher messages with the option.
    assert lowat[4] < off[4] / 4
    assert lowat[1] < off[1]


def test_watch_child():
    lines = run("watch_child.py", "--megabytes", "4", "--read-rate", "4096", "--interval", "0.1")
    assert re.fullmatch(r"child pid \d+ uploads 4 MiB; reading 4096 KiB/s", lines[0])
    rows = table_rows(lines, "time_s fd remote state unacked_kib unsent_kib free_kib queue_delay_ms")
    assert rows and all(row[2].startswith("127.0.0.1:") for row in rows)
    # ESTABLISHED while it uploads, then FIN_WAIT1 once it has shut its side down.
    assert rows[0][3] == "ESTABLISHED"
    assert lines[-1] == "child exited with status 0"


def test_plot_recording(tmp_path):
    pytest.importorskip("matplotlib")
    lines = run("plot_recording.py", "--output", "rec.png", "--csv", "rec.csv", "--bursts", "3",
                cwd=tmp_path)
    assert lines[0] == "3 bursts of 512 KiB every 0.1 s to a reader taking 4096 KiB/s"
    assert re.fullmatch(rf"wrote rec.png: \d+ samples over {NUMBER} s \(buffer full {NUMBER} s, "
                        rf"unsent max {NUMBER} KiB\)", lines[1])
    assert lines[2] == ("wrote rec.csv: columns time_s, size, unacked, unsent, free, queue_delay_s, "
                        "limited_by, stalled_s, rtt_us")
    assert (tmp_path / "rec.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = (tmp_path / "rec.csv").read_text().splitlines()[0]
    assert header == "time_s,size,unacked,unsent,free,queue_delay_s,limited_by,stalled_s,rtt_us"


def test_lowat_tuner():
    lines = run("lowat_tuner.py", "--rate", "1000")
    assert lines[0] == "target 20 ms; the reader slows to 1000 KiB/s after 0.5 s"
    rows = table_rows(lines, "time_s rate_kib_s lowat_bytes unsent_bytes")
    assert rows and all(len(row) == 4 for row in rows)
    # Loopback first: 20 ms of it is megabytes.
    assert max(int(row[2]) for row in rows) > 1 << 20
    match = re.fullmatch(rf"updates (\d+), changes (\d+) over {NUMBER} s; lowat at the end "
                         rf"(\d+) bytes \(1000 KiB/s x 20 ms = 20480\)", lines[-1])
    assert match, lines[-1]
    updates, changes, lowat = (int(group) for group in match.groups())
    # 1000 KiB/s x 20 ms, less what the reader's pacing loses; few changes for many updates.
    assert 14_000 <= lowat <= 26_000
    assert changes <= updates // 3
