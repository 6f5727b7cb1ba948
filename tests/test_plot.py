"""`sockdiag plot FILE -o out.png`: timelines from recordings of watch, top and ifstat."""

from __future__ import annotations

import json

import struct
import subprocess
import sys

import pytest

from sockdiag._demo import workload
from sockdiag.views.plot import panels
from testsupport.terminal import SOCKDIAG

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")
pytest.importorskip("matplotlib", reason="sockdiag plot needs the plot extra")


def sockdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), capture_output=True, text=True, timeout=120)


def png_size(path) -> tuple[int, int]:
    """(width, height) of a valid PNG; AssertionError for anything else."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def demo_recording(tmp_path_factory):
    """`watch PID --record f.jsonl` of the demo's workload, 12 samples."""
    path = tmp_path_factory.mktemp("plot") / "demo.jsonl"
    with workload(60) as (pid, roles):
        done = sockdiag("watch", str(pid), "-n", "12", "-i", "0.25", "--record", str(path))
    assert done.returncode == 0, done.stderr
    return path, roles


def test_watch_record_then_plot_gives_the_picture(demo_recording, tmp_path):
    path, roles = demo_recording
    out = tmp_path / "f.png"
    done = sockdiag("plot", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}: 12 samples of `sockdiag watch`, 3 of 18 rows drawn\n"
    width, height = png_size(out)
    assert (width, height) == (1000, 1210)
    assert 30_000 < out.stat().st_size < 1_000_000


def test_plot_json_says_what_was_drawn(demo_recording, tmp_path):
    path, _ = demo_recording
    out = tmp_path / "f.png"
    done = sockdiag("plot", str(path), "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"output": str(out), "kind": "watch", "samples": 12,
                                       "items_drawn": 3, "items": 18}


def test_the_panels_hold_the_recorded_values(demo_recording):
    path, roles = demo_recording
    drawn, summary = panels(str(path))
    assert [p.title.split(" (")[0].split(":")[0] for p in drawn] == \
        ["unsent", "unacked", "queue delay", "smoothed RTT", "the process"]
    unsent = drawn[0].lines
    bulk = next(label for label in unsent if label.startswith(f"fd {roles['bulk']} "))
    seconds, kib = unsent[bulk]
    assert len(seconds) == 12 and seconds[0] == 0 and seconds == sorted(seconds)
    assert min(kib) > 512  # the bulk sender's backlog, in KiB
    totals = drawn[4].lines
    assert set(totals) == {"unsent", "unacked"}
    assert all(total >= one for total, one in zip(totals["unsent"][1], kib))


def test_connection_since_and_until(demo_recording, tmp_path):
    path, roles = demo_recording
    drawn, summary = panels(str(path), connection=str(roles["paced"]), since=0.6, until=2.0)
    assert summary.items_drawn == summary.items == 1
    (label, (seconds, _)), = drawn[0].lines.items()
    assert label.startswith(f"fd {roles['paced']} [::1]:")
    assert 0.6 <= seconds[0] and seconds[-1] <= 2.0 and 4 <= len(seconds) <= 7
    out = tmp_path / "one.png"
    endpoint = label.split()[2]
    assert sockdiag("plot", str(path), "-o", str(out), "--connection", endpoint).returncode == 0
    png_size(out)


@pytest.mark.parametrize("args, message", [
    (["--connection", "99999"], "sockdiag: no connection '99999' in {path}\n"),
    (["--since", "1000"], "sockdiag: {path}: no sample between --since and --until\n"),
])
def test_bad_choices_are_one_line(demo_recording, tmp_path, args, message):
    path, _ = demo_recording
    done = sockdiag("plot", str(path), "-o", str(tmp_path / "x.png"), *args)
    assert done.returncode == 1
    assert done.stderr == message.format(path=path)
    assert not (tmp_path / "x.png").exists()


def test_until_before_since_is_a_usage_error(demo_recording, tmp_path):
    done = sockdiag("plot", str(demo_recording[0]), "-o", str(tmp_path / "x.png"), "--since", "5", "--until", "2")
    assert done.returncode == 2 and "--until must come after --since" in done.stderr


@pytest.mark.parametrize("command, titles", [
    (["top", "-n", "4"], ["sent per process", "received per process", "sent since the start",
                          "received since the start"]),
    (["ifstat", "-n", "4", "-I", "lo"], ["received per interface", "sent per interface"]),
], ids=["top", "ifstat"])
def test_top_and_ifstat_recordings(tmp_path, command, titles):
    import socket

    path, out = tmp_path / "r.jsonl", tmp_path / "r.png"
    recorder = subprocess.Popen(SOCKDIAG + command + ["-i", "0.2", "--record", str(path)])
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    for _ in range(20):  # bytes for the rates
        client.send(b"x" * 4096)
    assert recorder.wait(timeout=60) == 0
    client.close()
    listener.close()
    drawn, summary = panels(str(path))
    assert [p.title.split(" (")[0].split(",")[0] for p in drawn] == titles
    assert summary.kind == command[0]
    done = sockdiag("plot", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    width, height = png_size(out)
    assert width == 1000 and height > 300
