"""The one reader contract of recordings: every value checked against the
struct's schema, a bad line refused with its number, bounded memory (a line
limit, zstd read a kilobyte at a time), multi-frame and skippable-frame zstd;
hostile lines generated from the schema with hypothesis.  And the writer's
contract on the same files: an exclusive lock, no silent overwrite."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sockdiag.recording_file import (ITEM_FIELDS, ITEM_SCHEMA, MAX_LINE_CHARS, RecordingError,
                                     RecordingReader, RecordingWriter)
from testsupport.terminal import SOCKDIAG

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

IFSTAT_FIELDS = ITEM_FIELDS["ifstat"]


def interface(name: str, rx: int) -> tuple:
    values = {"name": name, "index": 1, "is_up": True, "mtu": 65536, "rx_bytes": rx, "tx_bytes": rx,
              "rx_packets": 1, "tx_packets": 1, "rx_errors": 0, "tx_errors": 0, "rx_drops": 0,
              "tx_drops": 0, "counters_note": None}
    return tuple(values[field] for field in IFSTAT_FIELDS)


def good_lines(tmp_path) -> list[str]:
    """A small ifstat recording written by the writer: header, then three samples."""
    path = tmp_path / "good.jsonl"
    with RecordingWriter(str(path), "ifstat", {"interval_s": 1.0, "started": 1.0e9}, overwrite=True) as writer:
        writer.write(1.0e9 + 1, {"lo": interface("lo", 10), "eth0": interface("eth0", 5)})
        writer.write(1.0e9 + 2, {"lo": interface("lo", 20)})
        writer.write(1.0e9 + 3, {"lo": interface("lo", 30), "eth1": interface("eth1", 0)})
    return path.read_text().splitlines(keepends=True)


def read_all(path) -> list:
    return list(RecordingReader(str(path)).samples())


def sockdiag(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), capture_output=True, text=True, timeout=60)


def test_the_writers_lines_read_back(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text("".join(good_lines(tmp_path)))
    samples = read_all(path)
    assert [list(s.items) for s in samples] == [["lo", "eth0"], ["lo"], ["lo", "eth1"]]
    assert samples[2].items["lo"]["rx_bytes"] == 30


def _set_value(field: str, value):
    def change(obj):
        obj["changed"]["lo"] = {field: value}
    return change


def _text_swap(index: int, old: str, new: str):
    """A change to the good file's lines: old becomes new in lines[index]."""
    def change(lines):
        assert old in lines[index], (old, lines[index])
        lines[index] = lines[index].replace(old, new)
    return change


def _object_change(index: int, change_object):
    """A change to the good file's lines: lines[index]'s JSON object changed by change_object."""
    def change(lines):
        obj = json.loads(lines[index])
        change_object(obj)
        lines[index] = json.dumps(obj, allow_nan=True) + "\n"
    return change


def _time_swap(new: str):
    return _text_swap(1, '"time":1000000001.0', f'"time":{new}')


# Each a (line number, change to the good file's lines, a part of the message).
HOSTILE = {
    "NaN time": (2, _time_swap("NaN"), "NaN is not a number"),
    "Infinity time": (2, _time_swap("-Infinity"), "-Infinity is not a number"),
    "1e400 time": (2, _time_swap("1e400"), "time inf is not"),
    "400-digit time": (2, _time_swap("9" * 400), "is not a number of seconds since the epoch"),
    "negative time": (2, _time_swap("-5"), "time -5 is not"),
    "times out of order": (3, _text_swap(2, '"time":1000000002.0', '"time":999.0'),
                           "is not after the previous sample's"),
    "a duplicated line": (3, lambda lines: lines.__setitem__(2, lines[1]), "is not after the previous sample's"),
    "a duplicate key": (2, _text_swap(1, '{"time"', '{"closed":[],"time"'), 'the key "closed" appears twice'),
    "2**200": (3, _object_change(2, _set_value("rx_bytes", 2**200)),
               "rx_bytes 1606938044258990275541962092341162602522202993782792835301376 is not"[:30]),
    "-1": (3, _object_change(2, _set_value("rx_bytes", -1)), "lo: rx_bytes -1 is not a value of this field"),
    "a string for a number": (3, _object_change(2, _set_value("mtu", "9000")), 'mtu "9000" is not a value'),
    "a number for a bool": (3, _object_change(2, _set_value("is_up", 1)), "is_up 1 is not"),
    "closed names an unknown item": (3, _object_change(2, lambda obj: obj.__setitem__("closed", ["wlan9"])),
                                     'closed names "wlan9"'),
    "changed names an unknown item": (3, _object_change(2, lambda obj: obj["changed"].__setitem__("wlan9", {"mtu": 1})),
                                      'changed names "wlan9"'),
    "an item under another's key": (2, _text_swap(1, '"eth0":["eth0"', '"eth0":["eth7"'),
                                    'item "eth0" holds the values of another item'),
    '"version": true': (1, _text_swap(0, '"version":1', '"version":true'), "a recording of format version true"),
    "interval_s NaN": (1, _text_swap(0, '"interval_s":1.0', '"interval_s":NaN'), "NaN is not a number"),
    "interval_s -1": (1, _text_swap(0, '"interval_s":1.0', '"interval_s":-1'), "interval_s -1 does not fit"),
    "interval_s 1e308": (1, _text_swap(0, '"interval_s":1.0', '"interval_s":1e308'), "interval_s 1e+308 does not fit"),
    "100,000 nested [": (2, lambda lines: lines.__setitem__(1, "[" * 100_000 + "\n"), "line 2 is nested too deeply"),
    "the header only": (1, lambda lines: lines.__delitem__(slice(1, None)), "the header only, no samples"),
}


def hostile_file(tmp_path, name: str):
    line, change, message = HOSTILE[name]
    lines = good_lines(tmp_path)
    change(lines)
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(lines))
    return path, line, message


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_line_is_refused_with_its_number(tmp_path, name):
    path, line, message = hostile_file(tmp_path, name)
    with pytest.raises(RecordingError) as refused:
        read_all(path)
    text = str(refused.value)
    assert "\n" not in text and message in text, text
    assert text.startswith(f"{path}: ")
    if line > 1:
        assert f"line {line}" in text


@pytest.mark.parametrize("name", ["NaN time", "400-digit time", "interval_s 1e308", "a string for a number",
                                  "100,000 nested [", "2**200", "closed names an unknown item",
                                  "the header only"])
@pytest.mark.parametrize("command", ["plot", "replay"])
def test_commands_refuse_a_hostile_recording_in_one_line(tmp_path, name, command):
    path, line, message = hostile_file(tmp_path, name)
    path = path.rename(path.with_name("watch.jsonl")) if command == "replay" else path
    if command == "replay":  # the same hostile value in a watch recording's header or line
        text = path.read_text().replace('"kind":"ifstat"', '"kind":"watch"', 1)
        if line > 1:
            text = "\n".join(text.split("\n")[:1] + text.split("\n")[line - 1:line])
        path.write_text(text if text.endswith("\n") else text + "\n")
    args = ["plot", str(path), "-o", str(tmp_path / "x.png")] if command == "plot" \
        else ["watch", "--replay", str(path), "--json"]
    done = sockdiag(*args)
    assert done.returncode == 1, done
    assert done.stdout == "" and done.stderr.count("\n") == 1 and done.stderr.startswith("sockdiag: "), done.stderr
    assert not (tmp_path / "x.png").exists()


# --- generated from the schema ---------------------------------------------------------

HOSTILE_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1, -0.5, 2**64, 2**200, 10**400, True, False, None, "",
                     "x" * 100, [], {}, [1, 2], {"a": 1}, 1e308, -1e-300]),
    st.integers(), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.booleans(),
    st.lists(st.integers(), max_size=3))


def _fits_schema(field: str, value) -> bool:
    return ITEM_SCHEMA["ifstat"][field](value)


@QUICK
@given(field=st.sampled_from(IFSTAT_FIELDS), value=HOSTILE_VALUES)
def test_generated_values_are_taken_only_when_they_fit(tmp_path, field, value):
    """A value put in a changed item is read back as it was when it fits the
    field's type and range, else refused naming line 3; nothing else escapes."""
    lines = good_lines(tmp_path)
    _object_change(2, _set_value(field, value))(lines)
    path = tmp_path / "generated.jsonl"
    path.write_text("".join(lines))
    fits = _fits_schema(field, value) and not (field == "name" and value != "lo")
    if fits:
        assert read_all(path)[1].items["lo"][field] == value
    else:
        with pytest.raises(RecordingError, match=f"line 3 is not a sample of this recording: "):
            read_all(path)


@QUICK
@given(data=st.data())
def test_generated_lines_never_escape_the_contract(tmp_path, data):
    """Lines built from pieces of the schema, shuffled and broken: read, or
    RecordingError in one line naming a line; never another exception, and
    every value read fits its field."""
    lines = good_lines(tmp_path)
    keys = st.sampled_from(["lo", "eth0", "eth1", "wlan9", "", "-"])
    pieces = st.fixed_dictionaries(
        {"time": st.one_of(st.floats(allow_nan=True), st.integers(min_value=-2, max_value=2**70))},
        optional={"new": st.dictionaries(keys, st.lists(HOSTILE_VALUES, max_size=14), max_size=2),
                  "changed": st.dictionaries(keys, st.dictionaries(st.sampled_from(IFSTAT_FIELDS + ("x",)),
                                                                   HOSTILE_VALUES, max_size=2), max_size=2),
                  "closed": st.lists(keys, max_size=2), "sample": st.dictionaries(st.text(max_size=3),
                                                                                 HOSTILE_VALUES, max_size=1),
                  "order": st.lists(keys, max_size=3)})
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(1, len(lines)))
        lines.insert(at, json.dumps(data.draw(pieces), allow_nan=True) + "\n")
    path = tmp_path / "generated.jsonl"
    path.write_text("".join(lines))
    try:
        samples = read_all(path)
    except RecordingError as err:
        assert "\n" not in str(err) and " line " in str(err)
        return
    for sample in samples:
        assert sample.time == sample.time and sample.time >= 0
        for item in sample.items.values():
            assert all(_fits_schema(field, value) for field, value in item.items())


@QUICK
@given(suffix=st.sampled_from([".jsonl", ".jsonl.zst"]), data=st.data())
def test_damaged_files_never_escape_the_contract(tmp_path, suffix, data):
    """A good file, plain or zstd, with bytes overwritten, cut or repeated:
    read, or one line of RecordingError; never another exception."""
    import zstandard

    raw = "".join(good_lines(tmp_path)).encode()
    raw = zstandard.ZstdCompressor().compress(raw) if suffix.endswith(".zst") else raw
    damaged = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        action = data.draw(st.sampled_from(["overwrite", "cut", "repeat"]))
        if action == "overwrite":
            damaged[at] = data.draw(st.integers(0, 255))
        elif action == "cut":
            del damaged[at:]
        else:
            damaged[at:at] = damaged[at:at + data.draw(st.integers(1, 64))]
        if not damaged:
            break
    path = tmp_path / f"damaged{suffix}"
    path.write_bytes(bytes(damaged))
    try:
        read_all(path)
    except RecordingError as err:
        assert "\n" not in str(err)


# --- bounded memory, zstd framing -------------------------------------------------------

def _rle_frame(total: int) -> bytes:
    """A zstd frame of total bytes of "a", made of 128 KiB RLE blocks of 4 bytes each."""
    block = 128 * 1024
    count = total // block
    blocks = b"".join((1 << 1 | block << 3 | (i == count - 1)).to_bytes(3, "little") + b"a"
                      for i in range(count))
    return b"\x28\xb5\x2f\xfd\x00\x38" + blocks  # no checksum, a window of 128 KiB


def test_a_zstd_bomb_is_one_line_in_bounded_memory(tmp_path):
    """99 KB of .zst holding a 3 GiB line: refused at the line limit, in < 300 MB RSS."""
    import zstandard

    header = good_lines(tmp_path)[0].encode()
    path = tmp_path / "bomb.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(header) + _rle_frame(3 << 30))
    assert path.stat().st_size < 100_000
    # A parent of its own reports the command's peak RSS (its only child's).
    peak_of_child = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:]); "
                     "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
                     "sys.exit(done.returncode)")
    done = subprocess.run([sys.executable, "-c", peak_of_child, *SOCKDIAG, "plot", str(path), "-o",
                           str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    *message, peak_kb = done.stderr.splitlines()
    assert done.returncode == 1
    assert message == [f"sockdiag: {path}: line 2 is longer than {MAX_LINE_CHARS >> 20} Mi characters, "
                       "a recording's limit"]
    assert int(peak_kb) < 300_000, peak_kb


def test_a_long_line_is_refused(tmp_path):
    lines = good_lines(tmp_path)
    path = tmp_path / "long.jsonl"
    path.write_text(lines[0] + '{"time":' + " " * MAX_LINE_CHARS + "1}\n")
    with pytest.raises(RecordingError, match="line 2 is longer than"):
        read_all(path)


def test_multi_frame_and_skippable_frame_zstd_reads(tmp_path):
    """pzstd's output (a skippable frame before each frame) and frames simply
    concatenated read as zstdcat reads them."""
    import zstandard

    text = "".join(good_lines(tmp_path)).encode()
    compress = zstandard.ZstdCompressor().compress
    path = tmp_path / "frames.jsonl.zst"
    half = text.index(b"\n", len(text) // 2) + 1
    skippable = b"\x50\x2a\x4d\x18" + (4).to_bytes(4, "little") + b"\0\0\0\0"
    path.write_bytes(skippable + compress(text[:half]) + skippable + compress(text[half:]))
    assert len(read_all(path)) == 3
    if shutil.which("pzstd") is None:
        pytest.skip("pzstd is in the zstd package (.ci/run installs it)")
    source = tmp_path / "big.jsonl"
    source.write_bytes(text)
    subprocess.run(["pzstd", "-q", "-p", "2", str(source), "-o", str(source) + ".zst"], check=True)
    assert len(read_all(str(source) + ".zst")) == 3


# --- the writer's side of the contract --------------------------------------------------

def test_two_recorders_on_one_file_the_second_refused(tmp_path):
    path = tmp_path / "one.jsonl"
    with RecordingWriter(str(path), "ifstat", {"interval_s": 1.0, "started": 1.0e9}) as first:
        first.write(1.0e9 + 1, {"lo": interface("lo", 1)})
        with pytest.raises(RecordingError, match="another sockdiag is recording to it"):
            RecordingWriter(str(path), "ifstat", {"interval_s": 1.0, "started": 1.0e9}, overwrite=True)
        first.write(1.0e9 + 2, {"lo": interface("lo", 2)})
    assert len(read_all(path)) == 2


def test_a_recording_is_not_overwritten_unless_forced(tmp_path):
    path = tmp_path / "kept.jsonl"
    path.write_text("".join(good_lines(tmp_path)))
    before = path.read_bytes()
    done = sockdiag("ifstat", "-n", "1", "-I", "lo", "--record", str(path))
    assert done.returncode == 1
    assert done.stderr == (f"sockdiag: {path} holds a sockdiag recording: "
                           "--force overwrites it, or record to another file\n")
    assert path.read_bytes() == before
    done = sockdiag("ifstat", "-n", "1", "-I", "lo", "--record", str(path), "--force")
    assert done.returncode == 0, done.stderr
    assert [list(s.items) for s in read_all(path)] == [["lo"]]


def test_recording_to_dev_full_is_one_line():
    done = sockdiag("ifstat", "-n", "1", "-I", "lo", "--record", "/dev/full")
    assert done.returncode == 1
    assert done.stderr == "sockdiag: cannot write /dev/full: No space left on device after 0 samples\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")
def test_replay_keeps_the_live_order(tmp_path):
    """Items whose order changes between samples come back in the order they were written."""
    path = tmp_path / "order.jsonl"
    with RecordingWriter(str(path), "ifstat", {"interval_s": 1.0, "started": 1.0e9}) as writer:
        writer.write(1.0e9 + 1, {"a": interface("a", 1), "b": interface("b", 1)})
        writer.write(1.0e9 + 2, {"c": interface("c", 1), "b": interface("b", 1), "a": interface("a", 1)})
        writer.write(1.0e9 + 3, {"b": interface("b", 1), "a": interface("a", 1), "c": interface("c", 1)})
    assert [list(s.items) for s in read_all(path)] == [["a", "b"], ["c", "b", "a"], ["b", "a", "c"]]
    assert os.path.getsize(path) < 2000
