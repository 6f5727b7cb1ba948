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

import io
import json
import os
import signal
import threading
from dataclasses import dataclass
from typing import IO, Any, Iterator, Optional

from ._common import InterfaceCounters, ProcessTraffic, SocketInfo, SockdiagError, TcpInfo, TrafficSample
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
                 notice=None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown recording kind {kind!r}")
        self.path = path
        self.kind = kind
        self.max_size = max_size
        self.notice = None  # a header that cannot be written is the error below, not a notice
        self.fields = ITEM_FIELDS[kind]
        self.previous: dict[str, tuple] = {}
        self.samples = 0
        self.stopped: Optional[str] = None  # why the recording ended early
        self._compressor = _zstandard().ZstdCompressor(level=3).compressobj() \
            if path.endswith(".zst") else None
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise RecordingError(f"cannot write {path}: {err.strerror}") from None
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
    """Whether a zstd stream ends in the middle of a block (a cut file).

    A recording whose writer stopped at a full disk ends after a whole
    block, its frame unfinished: that is a complete recording.  Walks the
    frame and block headers only (RFC 8878, sections 3.1.1 and 3.1.1.2).
    """
    size = os.fstat(raw.fileno()).st_size
    at = 0
    while at < size:
        raw.seek(at)
        head = raw.read(6)
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

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            data = self._raw.read(_ZSTD_READ_SIZE)
            if not data:
                return 0
            self._pending = memoryview(self._decompressed(data))
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


class RecordingReader:
    """A recording, read line by line: ``header``, then ``samples()``.

    Raises RecordingError (one line naming the file) for a file that cannot
    be read, is not a recording, comes from another format version, or is
    cut in the middle of a line or damaged.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._file = _open_text(path)
        self._line_number = 0
        try:
            header = self._next()
        except RecordingError:
            self._file.close()
            raise
        if header is None or not isinstance(header, dict) or header.get("format") != FORMAT:
            self._file.close()
            raise RecordingError(f"{path}: not a sockdiag recording")
        if header.get("version") != VERSION:
            self._file.close()
            raise RecordingError(f"{path}: a recording of format version {header.get('version')}; "
                                 f"this sockdiag reads version {VERSION}")
        if header.get("kind") not in KINDS:
            self._file.close()
            raise RecordingError(f"{path}: unknown kind of recording {header.get('kind')!r}")
        self.header: dict[str, Any] = header
        self.kind: str = header["kind"]

    def _next(self) -> Optional[Any]:
        try:
            line = self._file.readline()
        except (OSError, UnicodeDecodeError, ValueError) as err:
            if not self._line_number:
                raise RecordingError(f"{self.path}: not a sockdiag recording") from None
            raise RecordingError(f"{self.path}: damaged after line {self._line_number} ({err})") from None
        if not line:
            return None
        self._line_number += 1
        if not line.endswith("\n"):
            raise RecordingError(f"{self.path}: truncated: line {self._line_number} is incomplete")
        try:
            return json.loads(line)
        except ValueError:
            if self._line_number == 1:
                raise RecordingError(f"{self.path}: not a sockdiag recording") from None
            raise RecordingError(f"{self.path}: line {self._line_number} is not JSON") from None

    def samples(self) -> Iterator[RecordedSample]:
        """Every sample in order, each with all its items."""
        fields = self.header.get("fields")
        if not isinstance(fields, list):
            raise RecordingError(f"{self.path}: the header names no fields")
        state: dict[str, dict[str, Any]] = {}
        try:
            while (line := self._next()) is not None:
                try:
                    for key in line["closed"]:
                        state.pop(key, None)
                    for key, values in line["new"].items():
                        if len(values) != len(fields):
                            raise ValueError("an item of another length")
                        state[key] = dict(zip(fields, values))
                    for key, values in line["changed"].items():
                        state[key] = state[key] | values
                    sample = RecordedSample(float(line["time"]), dict(state), line.get("sample", {}))
                except (KeyError, TypeError, AttributeError, ValueError):
                    raise RecordingError(
                        f"{self.path}: line {self._line_number} is not a sample of this recording") from None
                yield sample
        finally:
            self._file.close()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "RecordingReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# --- recorded items back into the library's records -----------------------------------

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
