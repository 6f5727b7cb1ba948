"""--record FILE on watch, top and ifstat: the file line by line, .zst, --max-size, a last line
that is always whole (Ctrl-C, SIGTERM, a full disk, a file size limit), replay, and bad input."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

from sockdiag._demo import workload
from sockdiag.recording_file import ITEM_FIELDS, RecordingError, RecordingReader, RecordingWriter
from conftest import mounted_tmpfs, wait_until
from testsupport.terminal import SOCKDIAG, Terminal, requires_tmux

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")
SUFFIXES = pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst"])


def sockdiag(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), capture_output=True, text=True, timeout=timeout, **kwargs)


def lines_of(path) -> list[dict]:
    """The recording's lines as JSON (decompressed when .zst); every line must end in a newline."""
    raw = open(path, "rb").read()
    if str(path).endswith(".zst"):
        import zstandard

        raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
    text = raw.decode()
    assert text.endswith("\n"), "the last line is cut"
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def demo_pid():
    """A process whose sockets change at every sample (the demo's workload).

    It serves the whole module (a minute here, several on a loaded machine)
    and is stopped when the module ends: its lifetime is only a bound."""
    with workload(900) as (pid, roles):
        yield pid


def accepted(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    client = socket.create_connection(listener.getsockname(), timeout=5)
    return client, listener.accept()[0]


def test_changes_only_after_the_first_sample(tmp_path):
    """Header; the first sample has every socket in "new"; then only what changed: a new
    connection in "new", a closed one in "closed", the idle listener nowhere."""
    listener = socket.create_server(("127.0.0.1", 0))
    path = tmp_path / "own.jsonl"
    watcher = subprocess.Popen(SOCKDIAG + ["watch", str(os.getpid()), "-i", "0.1", "--record", str(path),
                                           "--port", str(listener.getsockname()[1])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first, first_server = accepted(listener)
    inode = {sock: str(os.fstat(sock.fileno()).st_ino) for sock in (listener, first, first_server)}
    try:
        wait_until(lambda: path.exists() and path.read_text().count("\n") >= 3, timeout=10)
        second, second_server = accepted(listener)
        inode.update({sock: str(os.fstat(sock.fileno()).st_ino) for sock in (second, second_server)})
        first.close()
        first_server.close()
        wait_until(lambda: any(line.get("closed") for line in lines_of(path)[1:]), timeout=10)
        time.sleep(0.3)
    finally:
        watcher.send_signal(signal.SIGTERM)
        _, err = watcher.communicate(timeout=10)
    assert watcher.returncode == 0 and err == ""
    header, *samples = lines_of(path)
    fields = header.pop("fields")
    assert header == {"format": "sockdiag-recording", "version": 1, "kind": "watch", "interval_s": 0.1,
                      "started": header["started"], "pid": os.getpid(), "name": header["name"]}
    assert fields[:3] == ["fd", "inode", "family"] and "tcp.rtt_us" in fields
    assert set(samples[0]["new"]) >= {inode[listener], inode[first], inode[first_server]}
    assert samples[0]["changed"] == {} and samples[0]["closed"] == []
    listener_item = dict(zip(fields, samples[0]["new"][inode[listener]]))
    assert listener_item["state"] == "LISTEN" and listener_item["local_port"] == listener.getsockname()[1]
    assert dict(zip(fields, samples[0]["new"][inode[first]]))["tcp.rtt_us"] is not None
    for sample in samples[1:]:
        assert inode[listener] not in sample["changed"] and inode[listener] not in sample["new"]
    opened = next(i for i, s in enumerate(samples) if inode[second] in s["new"])
    closed = next(i for i, s in enumerate(samples) if inode[first] in s["closed"])
    assert inode[second_server] in samples[opened]["new"]
    assert {inode[first], inode[first_server]} <= set(samples[closed]["closed"])
    assert all(inode[first] not in s["changed"] for s in samples[closed:])
    # Read back whole: the reader rebuilds each sample.
    rebuilt = list(RecordingReader(str(path)).samples())
    assert len(rebuilt) == len(samples)
    assert inode[second] in rebuilt[-1].items and inode[first] not in rebuilt[-1].items
    assert rebuilt[-1].items[inode[listener]]["state"] == "LISTEN"
    second.close()
    second_server.close()
    listener.close()


@SUFFIXES
def test_replay_gives_back_what_watch_showed(demo_pid, tmp_path, suffix):
    path = tmp_path / f"demo{suffix}"
    live = sockdiag("watch", str(demo_pid), "--json", "-n", "4", "-i", "0.2", "--record", str(path))
    assert live.returncode == 0, live.stderr
    replayed = sockdiag("watch", "--replay", str(path), "--json")
    assert replayed.returncode == 0, replayed.stderr
    live_lines = [json.loads(line) for line in live.stdout.splitlines()]
    replayed_lines = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert len(replayed_lines) == len(live_lines) == 4
    for shown, again in zip(live_lines, replayed_lines):
        assert again["time"] == shown["time"] and again["pid"] == shown["pid"]
        by_fd = lambda sample: sorted(sample["sockets"], key=lambda s: s["fd"])  # noqa: E731
        assert by_fd(again) == by_fd(shown)
    assert replayed_lines[0]["send_bps"] is None and replayed_lines[1]["send_bps"] is not None
    # Changes only: the idle connections are written once.
    samples = lines_of(path)[1:]
    assert len(samples[0]["new"]) == 18
    assert all(len(s["changed"]) < 18 for s in samples[1:])


def test_a_replays_text_says_its_times_are_recorded(demo_pid, tmp_path):
    """Piped or saved, a replay's screens are not taken for a live run's."""
    path = tmp_path / "demo.jsonl"
    live = sockdiag("watch", str(demo_pid), "-n", "2", "-i", "0.1", "--record", str(path))
    assert live.returncode == 0, live.stderr
    replayed = sockdiag("watch", "--replay", str(path))
    assert replayed.returncode == 0, replayed.stderr
    live_headers = [line for line in live.stdout.splitlines() if line.startswith(f"pid {demo_pid} ")]
    headers = [line for line in replayed.stdout.splitlines() if line.startswith(f"pid {demo_pid} ")]
    assert len(headers) == len(live_headers) == 2
    for shown, again in zip(live_headers, headers):
        name, stamp, rest = shown.split("  ", 2)
        assert again == f"{name}  recorded {stamp}  {rest}"


def test_zst_is_smaller_and_reads_the_same(demo_pid, tmp_path):
    plain, packed = tmp_path / "a.jsonl", tmp_path / "a.jsonl.zst"
    for path in (plain, packed):
        assert sockdiag("watch", str(demo_pid), "-n", "3", "-i", "0.1", "--record", str(path)).returncode == 0
    assert packed.stat().st_size < plain.stat().st_size / 3
    assert len(lines_of(packed)) == len(lines_of(plain)) == 4
    assert lines_of(packed)[1]["new"].keys() == lines_of(plain)[1]["new"].keys()


def test_zst_without_zstandard_is_one_line(demo_pid, tmp_path):
    code = "import sys; sys.modules['zstandard'] = None; from sockdiag.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, "watch", str(demo_pid), "--once",
                           "--record", str(tmp_path / "f.zst")], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr == ("sockdiag: a .zst recording needs the zstandard package: "
                           "pip install 'sockdiag[record]'\n")


@SUFFIXES
def test_max_size_bounds_the_file_and_the_view_goes_on(demo_pid, tmp_path, suffix):
    path = tmp_path / f"bounded{suffix}"
    # Reached within a few samples of the demo: its first sample alone is about 9 KB plain,
    # 2 KB compressed, and 40 samples several times that.
    limit = 14_000 if suffix == ".jsonl" else 4_000
    done = sockdiag("watch", str(demo_pid), "--json", "-n", "40", "-i", "0.02", "--record", str(path),
                    "--max-size", str(limit))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 40  # the view went on
    assert done.stderr.startswith(f"sockdiag: recording {path} stopped: --max-size {limit} bytes reached after ")
    assert done.stderr.count("\n") == 1
    assert path.stat().st_size <= limit
    samples = lines_of(path)[1:]
    assert 1 <= len(samples) < 40
    assert len(list(RecordingReader(str(path)).samples())) == len(samples)


def test_max_size_needs_record():
    done = sockdiag("watch", "1", "--max-size", "10K")
    assert done.returncode == 2 and "--max-size bounds a --record FILE" in done.stderr


@SUFFIXES
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_recording_ends_with_a_whole_line(demo_pid, tmp_path, suffix, stop):
    from testsupport.children import with_default_stop_signals

    for attempt, delay in enumerate((0.0, 0.013, 0.107)):
        path = tmp_path / f"stopped{attempt}{suffix}"
        watcher = subprocess.Popen(SOCKDIAG + ["watch", str(demo_pid), "-i", "0.01", "--record", str(path)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=with_default_stop_signals)
        wait_until(lambda: path.exists() and path.stat().st_size > 5000, timeout=20)  # samples written
        time.sleep(delay)
        watcher.send_signal(stop)
        _, err = watcher.communicate(timeout=10)
        assert watcher.returncode == 0 and err == "", err
        header, *samples = lines_of(path)
        assert header["kind"] == "watch" and samples
        assert len(list(RecordingReader(str(path)).samples())) == len(samples)


@pytest.fixture
def small_disk(tmp_path):
    """A 32 KiB tmpfs."""
    with mounted_tmpfs(tmp_path, "32k") as mount:
        yield mount


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))


@SUFFIXES
@pytest.mark.parametrize("limit", ["full-disk", "rlimit-fsize"])
def test_full_disk_leaves_whole_lines(demo_pid, tmp_path, request, suffix, limit):
    if limit == "full-disk":
        directory, preexec, reason = request.getfixturevalue("small_disk"), None, "No space left on device"
    else:
        directory, preexec, reason = tmp_path, _limit_file_size, "File too large"
    path = directory / f"full{suffix}"
    samples = 200 if suffix == ".jsonl" else 800
    done = subprocess.run(SOCKDIAG + ["watch", str(demo_pid), "--json", "-n", str(samples), "-i", "0.01",
                                      "--record", str(path)],
                          capture_output=True, text=True, timeout=120, preexec_fn=preexec)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == samples  # the view went on
    assert f"stopped: {reason} after " in done.stderr and done.stderr.count("\n") == 1
    header, *recorded = lines_of(path)
    assert 0 < len(recorded) < samples
    assert len(list(RecordingReader(str(path)).samples())) == len(recorded)


def test_a_zst_recording_stopped_early_reads_back_every_sample(tmp_path):
    """A .zst recording that stopped early (a full disk, --max-size) ends after a
    whole block, its frame unfinished; every sample in it reads back wherever
    that last block falls among the pieces the reader takes (zstandard's
    stream_reader lost the last block when it spanned two)."""
    fields = ITEM_FIELDS["watch"]
    counts = set()
    for max_size in range(880, 2180, 20):  # the header alone is about 720 bytes
        path = tmp_path / f"{max_size}.jsonl.zst"
        with RecordingWriter(str(path), "watch", {"pid": 1}, max_size=max_size) as writer:
            for n in range(200):
                given = {"fd": n, "inode": n, "kind": "tcp", "family": "IPv4", "local_address": f"{n}:" + "x" * 1000,
                         "local_port": 1, "remote_address": "127.0.0.1", "remote_port": 2, "state": "ESTABLISHED"}
                values = tuple(given.get(field) for field in fields)
                if not writer.write(float(n), {str(n): values}):
                    break
        assert writer.stopped and writer.samples
        counts.add(writer.samples)
        assert len(list(RecordingReader(str(path)).samples())) == writer.samples, max_size
    assert len(counts) > 10  # stopped after many different numbers of samples


@pytest.mark.parametrize("command", [["top", "-i", "0.2", "-n", "3"], ["ifstat", "-i", "0.2", "-n", "3", "-I", "lo"]],
                         ids=["top", "ifstat"])
def test_top_and_ifstat_record(tmp_path, command):
    path = tmp_path / f"{command[0]}.jsonl"
    done = sockdiag(*command, "--json", "--record", str(path))
    assert done.returncode == 0, done.stderr
    shown = [json.loads(line) for line in done.stdout.splitlines()]
    header, *samples = lines_of(path)
    assert header["kind"] == command[0] and header["interval_s"] == 0.2
    if command[0] == "ifstat":
        assert len(samples) == 3 and list(samples[0]["new"]) == ["lo"]
        counters = dict(zip(header["fields"], samples[0]["new"]["lo"]))
        assert counters["rx_bytes"] == shown[0]["interfaces"]["lo"]["rx_bytes"]
    else:
        assert len(samples) == 3
        assert set(samples[0]["sample"]) >= {"interval_s", "closed_sockets_counted", "unreadable_processes"}
        rebuilt = list(RecordingReader(str(path)).samples())
        for sample, recorded in zip(shown, rebuilt):
            assert {str(p["pid"]) if p["pid"] is not None else "-" for p in sample["processes"]} == \
                set(recorded.items)


@requires_tmux
@pytest.mark.parametrize("view", ["top", "ifstat"])
def test_a_stopped_recording_is_said_under_the_live_screen(tmp_path, view):
    """The notice waits for the live screen to end, then takes a line of its own under it."""
    path = tmp_path / f"{view}.jsonl"
    # Room for the header (about 500 bytes for top, 250 for ifstat) and hardly a sample more.
    with Terminal(view, "-i", "0.2", "-n", "6", "--record", str(path), "--max-size", "600",
                  width=300, height=40) as terminal:
        assert terminal.exit_status() == 0
        lines = terminal.screen().splitlines()
    said = [line for line in lines if "stopped: --max-size 600 bytes" in line]
    assert len(said) == 1 and said[0].startswith(f"sockdiag: recording {path} stopped"), lines
    assert path.stat().st_size <= 600


@requires_tmux
def test_replay_in_a_terminal_has_the_keys(demo_pid, tmp_path):
    path = tmp_path / "demo.jsonl"
    assert sockdiag("watch", str(demo_pid), "-n", "5", "-i", "0.1", "--record", str(path)).returncode == 0
    with Terminal("watch", "--replay", str(path)) as terminal:
        terminal.wait_for("end of the recording")
        terminal.press(">")
        terminal.wait_for("sort: free")
        terminal.press("Enter")
        screen = terminal.wait_for("Esc: back to the table")
        assert "the last 5 samples" in screen
        terminal.press("Escape", "q")
        assert terminal.exit_status() == 0


# --- bad input: one line, a non-zero exit ---------------------------------------------

@pytest.fixture(scope="module")
def good_recording(tmp_path_factory, demo_pid):
    path = tmp_path_factory.mktemp("rec") / "good.jsonl"
    assert sockdiag("watch", str(demo_pid), "-n", "3", "-i", "0.1", "--record", str(path)).returncode == 0
    return path


def _damaged_zst(data: bytes) -> bytes:
    """data compressed, with the inside of its blocks overwritten (headers kept)."""
    import zstandard

    packed = bytearray(zstandard.ZstdCompressor().compress(data))
    packed[40:-40] = bytes(len(packed) - 80)
    return bytes(packed)


def bad_files(tmp_path, good: bytes) -> dict:
    import zstandard

    files = {
        "missing": (tmp_path / "missing.jsonl", None, "cannot read {}: No such file or directory"),
        "cut mid-line": (tmp_path / "cut.jsonl", good[:len(good) - 40], "{}: truncated: line 4 is incomplete"),
        "another version": (tmp_path / "v2.jsonl", good.replace(b'"version":1', b'"version":2', 1),
                            "{}: a recording of format version 2; this sockdiag reads version 1"),
        "not a recording": (tmp_path / "other.jsonl", b'{"a": 1}\n', "{}: not a sockdiag recording"),
        "binary": (tmp_path / "png.jsonl", b"\x89PNG\r\n\x1a\n\0\0", "{}: not a sockdiag recording"),
        "cut .zst": (tmp_path / "cut.jsonl.zst", zstandard.ZstdCompressor().compress(good)[:-30],
                     "{}: truncated or not zstd: the file ends inside a compressed block"),
        "damaged .zst": (tmp_path / "damaged.jsonl.zst", _damaged_zst(good),
                         "{}: not a sockdiag recording"),
        "a line not a sample": (tmp_path / "odd.jsonl", good.split(b"\n")[0] + b'\n{"time": 1}\n',
                                "{}: line 2 is not a sample of this recording: its keys are [\"time\"], "
                                "not time, [sample,] new, changed, closed"),
    }
    for path, content, _ in files.values():
        if content is not None:
            path.write_bytes(content)
    return {name: (path, message.format(path)) for name, (path, content, message) in files.items()}


@pytest.mark.parametrize("name", ["missing", "cut mid-line", "another version", "not a recording",
                                  "binary", "cut .zst", "damaged .zst", "a line not a sample"])
@pytest.mark.parametrize("command", ["plot", "replay"])
def test_bad_recording_is_one_line(tmp_path, good_recording, name, command):
    path, message = bad_files(tmp_path, good_recording.read_bytes())[name]
    args = ["plot", str(path), "-o", str(tmp_path / "x.png")] if command == "plot" \
        else ["watch", "--replay", str(path), "--json"]
    done = sockdiag(*args)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == f"sockdiag: {message}"
    assert done.stderr.count("\n") == 1 and done.stdout == "", done.stderr  # nothing half-read is shown
    assert "Traceback" not in done.stderr


def test_replay_of_another_kind_says_how(tmp_path):
    path = tmp_path / "ifstat.jsonl"
    assert sockdiag("ifstat", "-n", "1", "-I", "lo", "--record", str(path)).returncode == 0
    done = sockdiag("watch", "--replay", str(path))
    assert done.returncode == 1
    assert done.stderr == (f"sockdiag: {path}: a recording of `sockdiag ifstat`, which watch cannot "
                           "replay; draw it with `sockdiag plot`\n")


def test_unwritable_recording_is_one_line(demo_pid, tmp_path):
    done = sockdiag("watch", str(demo_pid), "--once", "--record", str(tmp_path / "no" / "f.jsonl"))
    assert done.returncode == 1
    assert done.stderr == f"sockdiag: cannot write {tmp_path / 'no' / 'f.jsonl'}: No such file or directory\n"


def test_writer_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(ValueError):
        RecordingWriter(str(tmp_path / "f"), "nope", {})
    with pytest.raises(RecordingError, match="not a sockdiag recording"):
        (tmp_path / "empty").write_text("")
        RecordingReader(str(tmp_path / "empty"))


def test_max_size_below_the_header_is_one_line(tmp_path):
    path = tmp_path / "tiny.jsonl"
    done = sockdiag("ifstat", "-n", "1", "-I", "lo", "--record", str(path), "--max-size", "100")
    assert done.returncode == 1
    assert done.stderr == f"sockdiag: cannot write {path}: --max-size 100 bytes reached after 0 samples\n"
