"""`sockdiag plot FILE -o out.png`: timelines from recordings of watch, top and ifstat."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys

import pytest

from sockdiag._demo import workload
from sockdiag.fields import INTERFACE_FIELDS, SAMPLE_FIELDS, SOCKET_FIELDS, TRAFFIC_FIELDS
from sockdiag.views.plot import PANEL_FIELDS, TOTAL_FIELDS, panels
from testsupport.loopback import connected_pair, fill, held_still
from testsupport.terminal import SOCKDIAG

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")
pytest.importorskip("matplotlib", reason="sockdiag plot needs the plot extra")


def sockdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), capture_output=True, text=True, timeout=120)


# A value in a field's unit, in its picture's unit: written out here, apart from fields.py.
SCALES = {("bytes", "KiB"): 1 / 1024, ("bytes", "MiB"): 1 / 1024 ** 2, ("bytes/s", "KiB/s"): 1 / 1024,
          ("bytes/s", "kB/s"): 1 / 1000, ("s", "ms"): 1000, ("us", "ms"): 1 / 1000}


def in_picture(field, value) -> float:
    return math.nan if value is None else value * SCALES[field.unit, field.plot_unit]


def recorded_samples(path) -> list[tuple[float, dict]]:
    """The recording's samples, (time, {key: {field: value}}), read here without sockdiag."""
    lines = [json.loads(line) for line in open(path)]
    fields = lines[0]["fields"]
    state, samples = {}, []
    for line in lines[1:]:
        for key in line["closed"]:
            del state[key]
        for key, values in line["new"].items():
            state[key] = dict(zip(fields, values))
        for key, values in line["changed"].items():
            state[key] = {**state[key], **values}
        samples.append((line["time"], {key: dict(item) for key, item in state.items()}))
    return samples


def assert_panels_are_their_fields(drawn, fields):
    assert [(p.title, p.unit) for p in drawn[:len(fields)]] == [(f.plot, f.plot_unit) for f in fields]


def same(values, expected) -> bool:
    return values == pytest.approx(expected, rel=1e-9, nan_ok=True)


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
    """Each panel is its field's (title, unit) and holds the recorded values in
    that unit: the bulk sender's line in each, the process's totals."""
    path, roles = demo_recording
    drawn, summary = panels(str(path))
    assert [p.title.split(" (")[0].split(":")[0] for p in drawn] == \
        ["unsent", "unacked", "queue delay", "smoothed RTT", "the process"]
    fields = PANEL_FIELDS["watch"]
    assert [f.name for f in fields] == ["unsent", "unacked", "queue_delay_s", "tcp.rtt_us"]
    assert_panels_are_their_fields(drawn, fields)
    samples = recorded_samples(path)
    start = samples[0][0]
    bulk_key = next(key for key, item in samples[0][1].items() if item["fd"] == roles["bulk"])
    bulk = next(label for label in drawn[0].lines if label.startswith(f"fd {roles['bulk']} "))
    for panel, field in zip(drawn, fields):
        seconds, values = panel.lines[bulk]
        assert same(seconds, [time - start for time, _ in samples])
        assert same(values, [in_picture(field, items[bulk_key][field.name]) for _, items in samples])
    assert min(drawn[0].lines[bulk][1]) > 512  # the bulk sender's backlog, in KiB
    totals = drawn[4]
    assert (totals.unit, list(totals.lines)) == ("KiB", ["UNSENT", "UNACKED"])
    for field in TOTAL_FIELDS:
        assert same(totals.lines[field.label][1],
                    [in_picture(field, sum(item[field.name] or 0 for item in items.values()))
                     for _, items in samples])


def test_the_panels_hold_what_the_kernel_says(tmp_path):
    """A connection of this process held full while watch records it: its
    unsent line is SIOCOUTQNSD and its unacked line SIOCOUTQ less that, in
    KiB, at every sample."""
    client, server = connected_pair()
    fd = client.fileno()
    try:
        fill(client)
        for attempt in range(3):
            held = held_still(client)
            path = tmp_path / f"self{attempt}.jsonl"
            done = sockdiag("watch", str(os.getpid()), "-n", "3", "-i", "0.2", "--record", str(path))
            assert done.returncode == 0, done.stderr
            if held_still(client) == held:  # the same before and after the recording
                break
        else:
            pytest.fail(f"the held queues kept moving: {held}")
        unsent, unacked = held
        drawn, summary = panels(str(path), connection=str(fd))
    finally:
        client.close()
        server.close()
    assert summary.samples == 3 and unsent > 0
    (label, (_, unsent_kib)), = drawn[0].lines.items()
    assert label.startswith(f"fd {fd} ")
    assert unsent_kib == [unsent / 1024] * 3
    (_, unacked_kib), = drawn[1].lines.values()
    assert unacked_kib == [unacked / 1024] * 3


def test_every_plotted_field_has_a_title_and_a_unit_of_its_kind():
    for fields in PANEL_FIELDS.values():
        assert all(field.plot and field.plot_unit for field in fields)
    for field in SOCKET_FIELDS + TRAFFIC_FIELDS + INTERFACE_FIELDS + SAMPLE_FIELDS:
        if field.plot_unit is not None:
            assert field.plotted(1000) == pytest.approx(in_picture(field, 1000))
            assert math.isnan(field.plotted(None))


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
    assert_panels_are_their_fields(drawn, PANEL_FIELDS[summary.kind])
    samples = recorded_samples(path)
    start = samples[0][0]
    for panel, field in zip(drawn, PANEL_FIELDS[summary.kind]):
        compared = 0
        seen = {key: item for _, items in samples for key, item in items.items()}
        for key, item in seen.items():
            if summary.kind == "top":
                label = f"{key} {item['name'] or ''}".strip()
                expected = [(time - start, in_picture(field, items[key][field.name]))
                            for time, items in samples if key in items]
            else:  # a rate from two samples' counters
                label, counter = key, field.name.removeprefix("rates.").replace("_per_s", "")
                expected = [(time - start, in_picture(field, (items[key][counter] - before[key][counter])
                                                      / (time - earlier)))
                            for (earlier, before), (time, items) in zip(samples, samples[1:])
                            if key in items and key in before]
            if label in panel.lines:
                seconds, values = panel.lines[label]
                assert same(seconds, [x for x, _ in expected]) and same(values, [y for _, y in expected])
                compared += 1
        assert compared == len(panel.lines) > 0
    done = sockdiag("plot", str(path), "-o", str(out))
    assert done.returncode == 0, done.stderr
    width, height = png_size(out)
    assert width == 1000 and height > 300
