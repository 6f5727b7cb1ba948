"""Recordings of the live views on disk: `watch`, `top` and `ifstat` with ``--record FILE``.

One JSON object per line (M-Lab tcp-info's habit: one line per change, not
per poll).  The first line is the header::

    {"format": "sockdiag-recording", "version": 1, "kind": "watch", "fields": ["fd", "inode", ...],
     "interval_s": 1.0, "started": 1795436540.77, "pid": 1234, "name": "nginx"}

then one line per sample::

    {"time": 1795436541.77, "sample": {...}, "new": {KEY: [value, ...]},
     "changed": {KEY: {field: value, ...}}, "closed": [KEY, ...]}

``new`` holds every field of an item (a connection, a process, an
interface) seen for the first time, as a list in the order of the header's
``fields`` (names written once, not once per item); ``changed`` only the
fields of an item that changed since the previous sample, by name;
``closed`` the items gone; an item that did not change is not written.  The first sample has every item in
``new``.  ``sample`` holds the sample's own fields (top's coverage, for
example) and is left out when empty.  A name ending in ``.zst`` is written
zstd-compressed (``pip install 'sockdiag[record]'``), flushed block by block.

The recorder never leaves half a line: each sample is written whole or, when
a write fails (a full disk, a file size limit) or is interrupted (Ctrl-C,
SIGTERM), the file is cut back to the end of the previous sample.  With
``max_size`` it stops before the sample that would make the file larger.
"""

from __future__ import annotations

import fcntl
import io
import json
import math
import os
import signal
import stat
import threading
import typing
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator, Optional, Sequence

from . import _validate
from ._common import InterfaceCounters, ProcessTraffic, SocketInfo, TcpInfo, TrafficSample
from ._exceptions import SockdiagError
from ._watch import ProcessSample, socket_key

FORMAT = "sockdiag-recording"
VERSION = 1
KINDS = ("watch", "top", "ifstat")

# tcp_info's "ms since the last ..." tick with the clock on every socket:
# recording them would make every connection change at every sample.
_CLOCK_FIELDS = frozenset({"last_data_sent_ms", "last_ack_sent_ms", "last_data_recv_ms", "last_ack_recv_ms"})
_SOCKET_FIELDS = tuple(name for name in SocketInfo._fields if name != "tcp")
_TCP_FIELDS = tuple(name for name in TcpInfo._fields if name not in _CLOCK_FIELDS)
_TRAFFIC_FIELDS = ProcessTraffic._fields
_TRAFFIC_SAMPLE_FIELDS = tuple(name for name in TrafficSample._fields
                               if name not in ("time", "processes"))
_INTERFACE_FIELDS = InterfaceCounters._fields
# Names of the recorded fields of an item, by kind (a watch item: socket fields, then tcp_info's).
ITEM_FIELDS = {"watch": _SOCKET_FIELDS + tuple("tcp." + name for name in _TCP_FIELDS),
               "top": _TRAFFIC_FIELDS, "ifstat": _INTERFACE_FIELDS}
_UNATTRIBUTED = "-"  # top's key of the row without a process


class RecordingError(SockdiagError):
    """A recording that cannot be written or read (one line, naming the file)."""


def _zstandard():
    try:
        import zstandard
    except ImportError:
        raise RecordingError("a .zst recording needs the zstandard package: "
                             "pip install 'sockdiag[record]'") from None
    return zstandard


# --- items of each kind: key -> tuple of values in ITEM_FIELDS order ------------------

def watch_items(sample: ProcessSample) -> dict[str, tuple]:
    """The sockets of a watch sample, by inode (as a string)."""
    items = {}
    for s in sample.sockets:
        tcp = s.tcp
        values = tuple(getattr(s, name) for name in _SOCKET_FIELDS)
        values += tuple(getattr(tcp, name) for name in _TCP_FIELDS) if tcp is not None \
            else (None,) * len(_TCP_FIELDS)
        items[socket_key(s)] = values
    return items


def top_items(sample: TrafficSample) -> dict[str, tuple]:
    """The processes of a top sample, by pid ("-" for the unattributed row)."""
    return {str(p.pid) if p.pid is not None else _UNATTRIBUTED:
            tuple(getattr(p, name) for name in _TRAFFIC_FIELDS) for p in sample.processes}


def top_sample_fields(sample: TrafficSample) -> dict[str, Any]:
    """What a top sample says besides its rows (interval, coverage)."""
    return {name: getattr(sample, name) for name in _TRAFFIC_SAMPLE_FIELDS}


def ifstat_items(sample: dict[str, InterfaceCounters]) -> dict[str, tuple]:
    """The interfaces of an ifstat sample, by name."""
    return {name: tuple(getattr(c, field) for field in _INTERFACE_FIELDS) for name, c in sample.items()}


# --- writing -----------------------------------------------------------------------

class RecordingWriter:
    """Writes samples of one kind to path, changes only after the first.

    ``header``: what the view knows of itself (pid, name, interval_s); kept
    in the first line.  ``max_size``: bytes the file may reach (None: no
    bound); the first sample that would pass it ends the recording.
    ``notice(line)`` is told once why a recording ended early.  Use it as a
    context manager, or call close().
    """

    def __init__(self, path: str, kind: str, header: dict[str, Any], *, max_size: Optional[int] = None,
                 notice=None, overwrite: bool = False) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown recording kind {kind!r}")
        self.path = path
        self.kind = kind
        self.max_size = None if max_size is None else _validate.BYTES.check(max_size, "max_size")
        self.notice = None  # a header that cannot be written is the error below, not a notice
        self.fields = ITEM_FIELDS[kind]
        self.previous: dict[str, tuple] = {}
        self.samples = 0
        self.stopped: Optional[str] = None  # why the recording ended early
        self._compressor = _zstandard().ZstdCompressor(level=3).compressobj() \
            if path.endswith(".zst") else None
        self._fd = _opened_alone(path, overwrite)
        self._regular = stat.S_ISREG(os.fstat(self._fd).st_mode)  # /dev/full, a pipe: nothing to cut
        self.size = 0
        # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the process.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        self._write_line({"format": FORMAT, "version": VERSION, "kind": kind, "fields": self.fields, **header})
        if self.stopped:
            self.close()
            raise RecordingError(f"cannot write {path}: {self.stopped}")
        self.notice = notice

    def write(self, time: float, items: dict[str, tuple], sample_fields: Optional[dict] = None) -> bool:
        """Record one sample (items from watch_items/top_items/ifstat_items); False once stopped."""
        if self.stopped:
            return False
        previous = self.previous
        new, changed = {}, {}
        for key, values in items.items():
            before = previous.get(key)
            if before is None:
                new[key] = values
            elif before != values:
                changed[key] = {name: value for name, value, old in zip(self.fields, values, before)
                                if value != old}
        line: dict[str, Any] = {"time": time}
        if sample_fields:
            line["sample"] = sample_fields
        line["new"] = new
        line["changed"] = changed
        line["closed"] = [key for key in previous if key not in items]
        # The reader puts new items last; when the view's order is another, it is written.
        if len(new) != len(items) and list(items) != [key for key in previous if key in items] + list(new):
            line["order"] = list(items)
        if self._write_line(line):
            self.previous = items
            self.samples += 1
            return True
        return False

    def _write_line(self, obj: dict) -> bool:
        data = (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
        if self._compressor is not None:
            zstandard = _zstandard()
            data = self._compressor.compress(data) + self._compressor.flush(
                zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        if self.max_size is not None and self.size + len(data) > self.max_size:
            self._stop(f"--max-size {self.max_size} bytes reached after {self.samples} samples")
            return False
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as err:
            self._cut_back()
            self._stop(f"{err.strerror} after {self.samples} samples")
            return False
        except BaseException:
            self._cut_back()  # Ctrl-C or SIGTERM inside the write: no half line
            raise
        self.size += written
        return True

    def _cut_back(self) -> None:
        if not self._regular:
            return
        os.ftruncate(self._fd, self.size)
        os.lseek(self._fd, self.size, os.SEEK_SET)

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        if self.notice is not None:
            self.notice(f"sockdiag: recording {self.path} stopped: {reason}")

    def close(self) -> None:
        """End the file (a .zst frame is finished when there is room for its end)."""
        if self._fd < 0:
            return
        if self._compressor is not None and not self.stopped:
            tail = self._compressor.flush()
            if self.max_size is None or self.size + len(tail) <= self.max_size:
                try:
                    os.write(self._fd, tail)
                except OSError:
                    self._cut_back()  # the blocks already written still read
        os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> "RecordingWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _opened_alone(path: str, overwrite: bool) -> int:
    """path opened for a new recording, locked (flock) against a second
    recorder; a file that holds a recording is kept unless overwrite."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as err:
        raise RecordingError(f"cannot write {path}: {err.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordingError(f"{path}: another sockdiag is recording to it") from None
        except OSError:
            pass  # a file system without flock: recorded unlocked, as before
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_size:
            if not overwrite and _holds_a_recording(path):
                raise RecordingError(f"{path} holds a sockdiag recording: --force overwrites it, "
                                     "or record to another file")
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _holds_a_recording(path: str) -> bool:
    try:
        RecordingReader(path).close()
    except RecordingError:
        return False
    return True


# --- reading -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RecordedSample:
    """One sample of a recording, whole again: every item present at that moment.

    ``items``: key -> {field: value}; ``sample``:
    the sample's own fields (top's); ``time``: seconds since the epoch.
    """

    time: float
    items: dict[str, dict[str, Any]]
    sample: dict[str, Any]


def _zstd_cut_inside_a_block(raw: IO[bytes]) -> bool:
    """Whether a zstd stream ends in the middle of a block or frame header (a cut file).

    Frames follow one another, skippable frames among them (pzstd writes
    both).  A recording whose writer stopped at a full disk ends after a whole
    block, its frame unfinished: that is a complete recording.  Walks the
    frame and block headers only (RFC 8878, sections 3.1.1 and 3.1.1.2).
    """
    size = os.fstat(raw.fileno()).st_size
    at = 0
    while at < size:
        raw.seek(at)
        head = raw.read(8)
        if len(head) == 8 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18":
            at += 8 + int.from_bytes(head[4:], "little")  # a skippable frame (pzstd's sizes)
            continue
        if len(head) < 5 or head[:4] != b"\x28\xb5\x2f\xfd":
            return True
        descriptor = head[4]
        single_segment = descriptor >> 5 & 1
        at += 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] \
            + (single_segment, 2, 4, 8)[descriptor >> 6]
        while True:
            if at == size:
                return False  # unfinished frame, whole blocks
            raw.seek(at)
            block = raw.read(3)
            if len(block) < 3:
                return True
            header = int.from_bytes(block, "little")
            at += 3 + (1 if (header >> 1 & 3) == 1 else header >> 3)
            if at > size:
                return True
            if header & 1:
                break
        at += 4 if descriptor >> 2 & 1 else 0  # content checksum
    return at != size


# Compressed bytes read at a time.
_ZSTD_READ_SIZE = 1 << 16
# Compressed bytes decompressed at a time: zstd expands a byte at most about
# 32,000 times (RLE blocks), so what one step holds stays near 32 MB.
_ZSTD_STEP = 1 << 10


def _open_text(path: str) -> IO[str]:
    try:
        raw = open(path, "rb")
    except OSError as err:
        raise RecordingError(f"cannot read {path}: {err.strerror}") from None
    if not path.endswith(".zst"):
        return io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
    try:
        cut = _zstd_cut_inside_a_block(raw)
    except OSError as err:
        raw.close()
        raise RecordingError(f"cannot read {path}: {err.strerror}") from None
    if cut:
        raw.close()
        raise RecordingError(f"{path}: truncated or not zstd: the file ends inside a compressed block")
    raw.seek(0)
    return io.TextIOWrapper(io.BufferedReader(_ZstdStream(raw)), encoding="utf-8", newline="\n")


class _ZstdStream(io.RawIOBase):
    """The decompressed bytes of a zstd file, frame after frame.

    Not zstandard's stream_reader: read in pieces, as a text wrapper reads,
    it ends early when the last block of an unfinished frame (a recording
    stopped by a full disk) spans two pieces.  Damaged data is a ValueError.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._zstandard = _zstandard()
        self._frame = self._zstandard.ZstdDecompressor().decompressobj()
        self._pending = memoryview(b"")
        self._compressed = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if not self._compressed:
                self._compressed = memoryview(self._raw.read(_ZSTD_READ_SIZE))
                if not self._compressed:
                    return 0
            # A little at a time: a kilobyte may expand to tens of megabytes.
            step, self._compressed = self._compressed[:_ZSTD_STEP], self._compressed[_ZSTD_STEP:]
            self._pending = memoryview(self._decompressed(step))
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def _decompressed(self, data: bytes) -> bytes:
        out = []
        try:
            while data:
                out.append(self._frame.decompress(data))
                data = b""
                if self._frame.eof:  # another frame may follow in what is left
                    data = self._frame.unused_data
                    self._frame = self._zstandard.ZstdDecompressor().decompressobj()
        except self._zstandard.ZstdError as err:
            raise ValueError(str(err)) from None
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


class _Refused(ValueError):
    """A value of a recording's line that its schema refuses (the message says which and why)."""


def _checker(hint, signed: bool = False) -> Callable[[Any], bool]:
    """Whether a JSON value fits a struct field of type hint: integers in
    0..2**64-1 (the kernel's widest counter), finite reals from 0 (both from
    -2**63 when signed), text, booleans; None where Optional."""
    args = typing.get_args(hint)
    if type(None) in args:
        inner = _checker(next(arg for arg in args if arg is not type(None)), signed)
        return lambda value: value is None or inner(value)
    low = -_I64_MIN_MAGNITUDE if signed else 0
    if hint is bool:
        return lambda value: type(value) is bool
    if hint is int:
        return lambda value: type(value) is int and low <= value <= _U64_MAX
    if hint is float:
        return lambda value: (type(value) is float or type(value) is int) and low <= value <= _REAL_MAX
    if hint is str:
        return lambda value: type(value) is str
    raise TypeError(f"no recording schema for {hint!r}")


def _field_checks(struct: type, names: Sequence[str], prefix: str = "",
                  signed: frozenset[str] = frozenset()) -> dict[str, Callable]:
    hints = typing.get_type_hints(struct)
    return {prefix + name: _checker(hints[name], name in signed) for name in names}


_U64_MAX = 2**64 - 1
_I64_MIN_MAGNITUDE = 2**63
# top's bytes and rates may be negative: the accountant adds each socket's
# counters now minus before, and a socket's final counters (its destroy
# event) can read below its last dump (acked -29 on the unattributed row in
# a test run).  Every other recorded number is a count from 0.
_SIGNED_TRAFFIC = frozenset(name for name in _TRAFFIC_FIELDS if name.endswith(("_bytes", "_per_s")))
_REAL_MAX = 2.0**64
_PORT = _validate.PORT
# What a value of each recorded field may be, by kind (from the structs' own types).
ITEM_SCHEMA = {
    "watch": {**_field_checks(SocketInfo, _SOCKET_FIELDS), **_field_checks(TcpInfo, _TCP_FIELDS, "tcp."),
              # A UNIX socket has no port.
              "local_port": lambda v: v is None or type(v) is int and 0 <= v <= _PORT.maximum,
              "remote_port": lambda v: v is None or type(v) is int and 0 <= v <= _PORT.maximum},
    "top": _field_checks(ProcessTraffic, _TRAFFIC_FIELDS, signed=_SIGNED_TRAFFIC),
    "ifstat": _field_checks(InterfaceCounters, _INTERFACE_FIELDS),
}
_SAMPLE_SCHEMA = {
    "watch": {"pids": lambda v: type(v) is list and all(type(p) is int and 0 < p <= _validate.PID_MAX
                                                        for p in v)},
    "top": _field_checks(TrafficSample, _TRAFFIC_SAMPLE_FIELDS),
    "ifstat": {},
}
#: Seconds since the epoch a recording's times may hold (to the end of year 9999).
RECORDED_TIME = _validate.Reals(0.0, 253402300799.0, unit="seconds since the epoch")
_HEADER_SCHEMA = {
    "format": lambda v: v == FORMAT, "version": lambda v: type(v) is int, "kind": lambda v: v in KINDS,
    "fields": lambda v: type(v) is list, "interval_s": lambda v: _fits(_validate.SAMPLE_INTERVAL, v),
    "started": lambda v: _fits(RECORDED_TIME, v), "pid": lambda v: v is None or _fits(_validate.PID, v),
    "name": lambda v: v is None or type(v) is str, "cgroup": lambda v: v is None or type(v) is str,
}
_LINE_KEYS = frozenset({"time", "sample", "new", "changed", "closed", "order"})
#: The longest line a reader takes, in characters: a first sample of 20,000
#: connections is about 14 MB; a longer line is refused, not read into memory.
MAX_LINE_CHARS = 32 << 20


def _fits(valid, value) -> bool:
    try:
        valid.check(value)
    except (TypeError, ValueError):
        return False
    return True


def _shown(value) -> str:
    return _validate.shortened(
        json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else repr(value))


def _json_object(pairs: list) -> dict:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise _Refused(f"the key {_shown(twice)} appears twice")
    return found


def _json_constant(name: str):
    raise _Refused(f"{name} is not a number")


def _item_key(kind: str, item: dict[str, Any]) -> Optional[str]:
    """The key an item must be recorded under (the writer's socket_key, pid, or interface name)."""
    if kind == "watch":
        inode, fd = item.get("inode"), item.get("fd")
        return str(inode) if inode is not None else f"fd{fd}"
    if kind == "top":
        pid = item.get("pid")
        return str(pid) if pid is not None else _UNATTRIBUTED
    return item.get("name")


class RecordingReader:
    """A recording, read line by line: ``header``, then ``samples()``.

    Every value is checked against the recording's schema (the structs'
    field types: integers from 0 to 2**64-1, finite reals from 0, text,
    booleans; times finite, in order, within years 1970 to 9999) and every
    line against the recording so far (no item new twice, changed or closed
    before it is new, no key twice).  Raises RecordingError (one line naming
    the file and the line) for a file that cannot be read, is not a
    recording, comes from another format version, has no samples, holds a
    line longer than MAX_LINE_CHARS, or a line cut, damaged or refused.
    Reads in bounded memory: a line at a time, zstd a kilobyte at a time.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = _open_text(path)
        self._line_number = 0
        try:
            self.header: dict[str, Any] = self._header()
        except BaseException:
            self._file.close()
            raise
        self.kind: str = self.header["kind"]

    def _header(self) -> dict[str, Any]:
        header = self._next()
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise RecordingError(f"{self.path}: not a sockdiag recording")
        if header.get("version") != VERSION or type(header.get("version")) is not int:
            raise RecordingError(f"{self.path}: a recording of format version {_shown(header.get('version'))}; "
                                 f"this sockdiag reads version {VERSION}")
        if header.get("kind") not in KINDS:
            raise RecordingError(f"{self.path}: unknown kind of recording {_shown(header.get('kind'))}")
        for name, value in header.items():
            if name not in _HEADER_SCHEMA or not _HEADER_SCHEMA[name](value):
                raise self._refused(f"{name} {_shown(value)} does not fit a recording's header")
        fields = header.get("fields")
        known = ITEM_SCHEMA[header["kind"]]
        if not isinstance(fields, list) or not all(type(name) is str and name in known for name in fields) \
                or len(set(fields)) != len(fields):
            raise self._refused("the header's fields are not fields of this kind of recording")
        return header

    def _refused(self, why: str) -> RecordingError:
        return RecordingError(f"{self.path}: line {self._line_number} is not a sample of this recording: {why}"
                              if self._line_number > 1 else f"{self.path}: line 1: {why}")

    def _next(self) -> Optional[Any]:
        try:
            line = self._file.readline(MAX_LINE_CHARS + 1)
        except (OSError, UnicodeDecodeError, ValueError) as err:
            if not self._line_number:
                raise RecordingError(f"{self.path}: not a sockdiag recording") from None
            raise RecordingError(f"{self.path}: damaged after line {self._line_number} ({err})") from None
        if not line:
            return None
        self._line_number += 1
        if len(line) > MAX_LINE_CHARS:
            raise RecordingError(f"{self.path}: line {self._line_number} is longer than "
                                 f"{MAX_LINE_CHARS >> 20} Mi characters, a recording's limit")
        if not line.endswith("\n"):
            raise RecordingError(f"{self.path}: truncated: line {self._line_number} is incomplete")
        try:
            return json.loads(line, object_pairs_hook=_json_object, parse_constant=_json_constant)
        except _Refused as err:
            raise self._refused(str(err)) from None
        except RecursionError:
            raise RecordingError(f"{self.path}: line {self._line_number} is nested too deeply") from None
        except ValueError:
            if self._line_number == 1:
                raise RecordingError(f"{self.path}: not a sockdiag recording") from None
            raise RecordingError(f"{self.path}: line {self._line_number} is not JSON") from None

    def samples(self) -> Iterator[RecordedSample]:
        """Every sample in order, each with all its items; RecordingError at the first line refused."""
        fields = self.header["fields"]
        schema = ITEM_SCHEMA[self.kind]
        sample_schema = _SAMPLE_SCHEMA[self.kind]
        state: dict[str, dict[str, Any]] = {}
        last_time = -1.0
        try:
            while (line := self._next()) is not None:
                try:
                    last_time = self._time(line, last_time)
                    self._apply(line, state, fields, schema, sample_schema)
                except _Refused as err:
                    raise self._refused(str(err)) from None
                yield RecordedSample(last_time, dict(state), line.get("sample", {}))
            if self._line_number == 1:
                raise RecordingError(f"{self.path}: the header only, no samples")
        finally:
            self._file.close()

    @staticmethod
    def _time(line, last_time: float) -> float:
        if not isinstance(line, dict):
            raise _Refused("not a JSON object")
        if set(line) - _LINE_KEYS or not {"time", "new", "changed", "closed"} <= set(line):
            raise _Refused(f"its keys are {_shown(sorted(line))}, not time, [sample,] new, changed, closed")
        time = line["time"]
        if not _fits(RECORDED_TIME, time):
            raise _Refused(f"time {_shown(time)} is not {RECORDED_TIME.describe()}")
        if time <= last_time:
            raise _Refused(f"time {_shown(time)} is not after the previous sample's {last_time!r}")
        return float(time)

    def _apply(self, line: dict, state: dict, fields: list, schema: dict, sample_schema: dict) -> None:
        """Apply one sample's changes to state (key -> item), every value checked first."""
        new, changed, closed = line["new"], line["changed"], line["closed"]
        sample = line.get("sample", {})
        if not (type(new) is dict and type(changed) is dict and type(closed) is list and type(sample) is dict):
            raise _Refused("new and changed must be objects, closed a list, sample an object")
        for name, value in sample.items():
            if name not in sample_schema or not sample_schema[name](value):
                raise _Refused(f"sample.{name} {_shown(value)} does not fit a {self.kind} sample")
        for key in closed:
            if type(key) is not str or key not in state:
                raise _Refused(f"closed names {_shown(key)}, which is not open")
            del state[key]
        for key, values in new.items():
            if key in state:
                raise _Refused(f"new names {_shown(key)}, which is already open")
            if type(values) is not list or len(values) != len(fields):
                raise _Refused(f"new item {_shown(key)} does not hold the header's {len(fields)} fields")
            state[key] = self._checked(key, dict(zip(fields, values)), schema)
        for key, values in changed.items():
            if key not in state or key in new:
                raise _Refused(f"changed names {_shown(key)}, which is not open")
            if type(values) is not dict or not values.keys() <= set(fields):
                raise _Refused(f"changed item {_shown(key)} names fields the header does not")
            state[key] = self._checked(key, state[key] | values, schema)
        order = line.get("order")
        if order is not None:
            if type(order) is not list or len(order) != len(state) or set(order) != state.keys():
                raise _Refused("order does not name every open item once")
            reordered = {key: state[key] for key in order}
            state.clear()
            state.update(reordered)

    def _checked(self, key: str, item: dict[str, Any], schema: dict) -> dict[str, Any]:
        for name, value in item.items():
            if not schema[name](value):
                raise _Refused(f"{key}: {name} {_shown(value)} is not a value of this field")
        if _item_key(self.kind, item) != key:
            raise _Refused(f"item {_shown(key)} holds the values of another item")
        return item

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "RecordingReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --- recorded items back into the library's structs -----------------------------------

def socket_info(item: dict[str, Any]) -> SocketInfo:
    """A recorded watch item as a SocketInfo (tcp_info's clock fields are None)."""
    tcp_values = {name: item.get("tcp." + name) for name in _TCP_FIELDS}
    tcp = TcpInfo(**tcp_values) if any(value is not None for value in tcp_values.values()) else None
    return SocketInfo(**{name: item.get(name) for name in _SOCKET_FIELDS}, tcp=tcp)


def process_sample(header: dict[str, Any], recorded: RecordedSample, monotonic_s: float) -> ProcessSample:
    """A recorded watch sample as the ProcessSample the watch view draws."""
    return ProcessSample(time=recorded.time, monotonic_s=monotonic_s, pid=header.get("pid"),
                         name=header.get("name"),
                         sockets=tuple(socket_info(item) for item in recorded.items.values()),
                         cgroup=header.get("cgroup"), pids=tuple(recorded.sample.get("pids", ())))
