"""Recording an application's own sockets: send-buffer timelines.

Three ways to feed a Recording, one Recording type:

- ``record(sock, interval=0.001)``: a background thread samples the socket
  every ``interval`` seconds while the ``with`` body runs;
- ``record(sock, interval=None)`` or ``InstrumentedSocket(sock)``: a sample
  after every send through the wrapping socket, no thread;
- ``record_stream(writer)``: an asyncio StreamWriter or transport, sampled
  by callbacks on the event loop (each one a few microseconds of
  non-blocking syscalls), no thread.

Memory is bounded: a Recording keeps the newest ``capacity`` samples in a
ring buffer (about 180 bytes each, 200 with two extra fields: the default
100,000 take about 18 MB) and counts the ones it dropped.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import os
import threading
import time
from collections import deque
from typing import Any, AsyncContextManager, AsyncIterator, Callable, ContextManager, Iterator, Optional, Sequence

from . import _platform
from ._common import LINUX, TCP_INFO_FIELDS, figure_class, RecordingSummary, Sample, TcpInfo, snapshot_drain
from ._exceptions import NotSupported, UnsuitableSocket
from ._validate import COUNT, SAMPLE_INTERVAL

# 100,000 samples: 100 s at the default 1 ms interval, about 18 MB.
DEFAULT_CAPACITY = 100_000


@functools.lru_cache(maxsize=None)
def _sample_type(fields: tuple[str, ...]) -> type:
    """Sample itself, or a subclass that also has the chosen TcpInfo fields."""
    if not fields:
        return Sample
    types = TcpInfo.__annotations__
    cls = type(Sample)("Sample", (Sample,), {"__annotations__": {name: types[name] for name in fields}})
    cls.__module__ = __name__
    cls.__qualname__ = f"Sample[{', '.join(fields)}]"
    return cls


class Recording:
    """Samples of one socket's send buffer, newest ``capacity`` kept.

    Made by ``sockdiag.record``, ``sockdiag.record_stream`` and
    ``InstrumentedSocket``, and stays readable after the recording ends; or
    by hand, ``Recording(sock, fields, capacity)``, calling ``sample()``
    when you like.  The first sample is taken on construction: a closed,
    listening or unsuitable socket raises UnsuitableSocket there, an
    unknown field ValueError.
    """

    def __init__(self, sock: Any, fields: Sequence[str] = (), capacity: int = DEFAULT_CAPACITY) -> None:
        fields, capacity = _checked_arguments(sock, fields, capacity)
        self._send_buffer = _platform.send_buffer
        self._tcp_info = _platform.tcp_info
        self._sock = sock
        self._fields = fields
        self._type = _sample_type(fields)
        self._ring: deque = deque(maxlen=capacity)
        self._taken = 0
        self._lock = threading.Lock()  # a sampler thread and the caller may both sample
        self._is_tcp = True
        self._take = self._take_python
        self._socket_closed = False
        self.capacity = capacity
        #: The socket to send through: the InstrumentedSocket when sampling
        #: after every send, else the socket being recorded.
        self.socket = sock
        #: An error that ended sampling early (other than the socket closing);
        #: record() and record_stream() raise it when their body ends.
        self.error: Optional[Exception] = None
        # The first sample, in the caller's thread so that bad input raises there.
        self._send_buffer(sock)  # its errors say what is wrong with the socket
        try:
            self._tcp_info(sock)
        except (UnsuitableSocket, NotSupported):
            if self._fields:
                raise
            self._is_tcp = False  # UDP or UNIX: no TCP_INFO, no queue delay
        # The drain across samples: the queue delay from the rate bytes are acknowledged.
        from .drain import DrainTracker  # `import sockdiag` goes without drain's dataclasses

        self._drains = DrainTracker()
        self._info = None  # the TcpInfo of the last sample taken
        self._last_info: Callable[[], Optional[TcpInfo]] = lambda: self._info
        self._with_drain: Callable[..., Sample] = lambda taken, delay, limited_by, stalled_s: taken.replace(
            queue_delay_s=delay, limited_by=limited_by, stalled_s=stalled_s)
        if self._is_tcp and LINUX:
            sampler = _platform.tcp_sampler(self._type, self._fields)
            self._take, self._last_info, self._with_drain = sampler.take, lambda: sampler.info, sampler.with_drain
        self.sample()

    # -- taking samples ------------------------------------------------------

    def _take_python(self, fd: int) -> Sample:
        """A sample from send_buffer() and tcp_info(): the reference for the
        fast path, and the path for other sockets and platforms."""
        buf = self._send_buffer(fd)
        info = self._info = self._tcp_info(fd) if self._is_tcp else None
        delay, limited_by, _, stalled_s = (snapshot_drain(buf.unsent, buf.unacked, buf.free, info)
                                           if info is not None else (None, None, None, None))
        values = [buf.size, buf.unacked, buf.unsent, buf.free, delay, limited_by, stalled_s]
        if self._fields:
            values.extend(getattr(info, name) for name in self._fields)
        return self._type(time.monotonic(), *values)

    def sample(self) -> bool:
        """Take one sample now; False (and nothing kept) once the socket is closed.

        Safe to call from any thread.  The samplers call it; call it yourself
        to mark a moment of interest.
        """
        if self._socket_closed:
            return False
        fd = self._sock.fileno()
        if fd >= 0:
            with self._lock:  # one sample at a time: the ring stays in time order
                try:
                    taken = self._take(fd)
                except UnsuitableSocket:
                    if self._sock.fileno() == fd:
                        raise
                    taken = None
                # Closed meanwhile: the fd number may already name another socket.
                if taken is not None and self._sock.fileno() == fd:
                    drain = self._drains.drain(fd, taken.time_s, taken.unsent, self._last_info(),
                                               (taken.queue_delay_s, None, taken.limited_by))
                    if drain is not None:
                        delay, _, limited_by, stalled_s = drain
                        if (delay, limited_by, stalled_s) != (taken.queue_delay_s, taken.limited_by,
                                                              taken.stalled_s):
                            taken = self._with_drain(taken, delay, limited_by, stalled_s)
                    self._ring.append(taken)
                    self._taken += 1
                    return True
        self._socket_closed = True
        return False

    def _sample_or_stop(self) -> bool:
        """sample() for the samplers: an error is kept in .error and stops them
        (a sampler thread or callback has no caller to raise it to)."""
        if self.error is not None:
            return False
        try:
            return self.sample()
        except Exception as err:
            self.error = err
            return False

    # -- reading -------------------------------------------------------------

    @property
    def fields(self) -> tuple[str, ...]:
        """The TcpInfo fields each sample carries besides the send buffer."""
        return self._fields

    @property
    def samples(self) -> list[Sample]:
        """The kept samples, oldest first (a copy)."""
        # list(deque) runs in C without releasing the GIL: a consistent copy
        # even while the sampler thread appends.
        return list(self._ring)

    @property
    def dropped(self) -> int:
        """How many of the oldest samples the ring buffer overwrote."""
        return self._taken - len(self._ring)

    @property
    def socket_closed(self) -> bool:
        """True once sampling saw the socket closed (the samples end there)."""
        return self._socket_closed

    def summary(self) -> RecordingSummary:
        """p50/p99/max of unacked, unsent and queue delay, time with a full buffer."""
        from .stats import percentile  # `statistics` stays out of `import sockdiag`

        samples = self.samples
        unacked = sorted(s.unacked for s in samples if s.unacked is not None)
        unsent = sorted(s.unsent for s in samples if s.unsent is not None)
        delay = sorted(s.queue_delay_s for s in samples if s.queue_delay_s is not None)
        full_buffer_s = sum(
            later.time_s - s.time_s for s, later in zip(samples, samples[1:]) if s.free == 0)
        return RecordingSummary(
            samples=len(samples),
            dropped=self.dropped,
            duration_s=samples[-1].time_s - samples[0].time_s,
            unacked_p50_bytes=percentile(unacked, 0.5),
            unacked_p99_bytes=percentile(unacked, 0.99),
            unacked_max_bytes=unacked[-1] if unacked else None,
            unsent_p50_bytes=percentile(unsent, 0.5),
            unsent_p99_bytes=percentile(unsent, 0.99),
            unsent_max_bytes=unsent[-1] if unsent else None,
            queue_delay_p50_s=percentile(delay, 0.5),
            queue_delay_p99_s=percentile(delay, 0.99),
            queue_delay_max_s=delay[-1] if delay else None,
            full_buffer_s=full_buffer_s,
        )

    def to_csv(self, path: str | os.PathLike) -> None:
        """Write the samples to a CSV file, one row each, a column per field of
        ``fields.sample_fields`` named by its JSON key; None is an empty cell."""
        from .fields import sample_fields

        fields = sample_fields(self._fields)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([field.json_key for field in fields])
            for s in self.samples:
                writer.writerow(["" if v is None else v for v in (field.value(s) for field in fields)])

    def plot(self, path: str | os.PathLike) -> None:
        """Write a PNG of the send buffer (unacked / unsent / free / size) and
        the queue delay over time, in each field's plot_unit (sockdiag.fields).

        Needs matplotlib (``pip install 'sockdiag[plot]'``); NotSupported
        without it.  Does not touch pyplot's global state or backend.
        """
        from .fields import SAMPLE_FIELDS, named

        Figure = figure_class()
        samples = self.samples
        start = samples[0].time_s
        seconds = [s.time_s - start for s in samples]
        delay, = named(SAMPLE_FIELDS, "queue_delay_s")
        has_delay = any(s.queue_delay_s is not None for s in samples)
        fig = Figure(figsize=(9, 6 if has_delay else 4), layout="constrained")
        axes = fig.subplots(2 if has_delay else 1, 1, sharex=True, squeeze=False)[:, 0]
        top = axes[0]
        drawn = named(SAMPLE_FIELDS, "unacked", "unsent", "free", "size")
        for field, style in zip(drawn, ("-", "-", "-", "--")):
            values = [field.value(s) for s in samples]
            if any(v is not None for v in values):
                top.plot(seconds, [field.plotted(v) for v in values],
                         style, label=field.label, drawstyle="steps-post", linewidth=1)
        top.set_ylabel(drawn[0].plot_unit)
        top.set_title(f"send buffer, {len(samples)} samples"
                      + (f" ({self.dropped} older dropped)" if self.dropped else ""))
        top.legend(loc="upper right")
        top.grid(alpha=0.3)
        if has_delay:
            axes[1].plot(seconds, [delay.plotted(delay.value(s)) for s in samples], drawstyle="steps-post",
                         linewidth=1)
            axes[1].set_title(delay.plot)
            axes[1].set_ylabel(delay.plot_unit)
            axes[1].grid(alpha=0.3)
        axes[-1].set_xlabel("seconds")
        fig.savefig(path, format="png", dpi=100)

    def __repr__(self) -> str:
        return (f"<Recording fd={self._sock.fileno()} samples={len(self._ring)} "
                f"dropped={self.dropped} fields={self._fields}>")


class InstrumentedSocket:
    """A socket that records its send buffer after every send.

    Behaves as the socket it wraps: every attribute and method is the
    wrapped socket's, ``fileno()`` is the real fd (selectors and
    ``select`` work), ``with`` closes it.  ``send``, ``sendall``,
    ``sendmsg``, ``sendto`` and ``sendfile`` take one sample after the call
    returns or raises, into ``.recording`` (a Recording).  Writes through
    ``makefile()`` are not recorded, and it is not a ``socket.socket``
    instance (``ssl.wrap_socket`` needs the real one).  asyncio takes it:
    ``asyncio.open_connection(sock=InstrumentedSocket(sock))`` records
    every send the transport makes.
    Availability: Linux, macOS.
    """

    __slots__ = ("_sock", "recording", "after_send")

    def __init__(self, sock: Any, *, fields: Sequence[str] = (), capacity: int = DEFAULT_CAPACITY) -> None:
        self._sock = sock
        self.recording = Recording(sock, fields, capacity)
        self.recording.socket = self
        #: Called with no arguments after each send's sample (a LowatTuner
        #: sets its ``maybe_update`` here); None for nothing.
        self.after_send: Optional[Callable[[], Any]] = None

    def _record(self) -> None:
        # Never hide the send's own result or exception: a failed sample is
        # kept in recording.error.
        self.recording._sample_or_stop()
        if self.after_send is not None:
            self.after_send()

    def send(self, data, flags: int = 0) -> int:
        try:
            return self._sock.send(data, flags)
        finally:
            self._record()

    def sendall(self, data, flags: int = 0) -> None:
        try:
            return self._sock.sendall(data, flags)
        finally:
            self._record()

    def sendto(self, data, *args):
        try:
            return self._sock.sendto(data, *args)
        finally:
            self._record()

    def sendmsg(self, buffers, *args):
        try:
            return self._sock.sendmsg(buffers, *args)
        finally:
            self._record()

    def sendfile(self, file, offset: int = 0, count: Optional[int] = None) -> int:
        try:
            return self._sock.sendfile(file, offset, count)
        finally:
            self._record()

    def __getattr__(self, name: str):
        if name == "_sock":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._sock, name)

    def __enter__(self) -> InstrumentedSocket:
        return self

    def __exit__(self, *exc_info) -> None:
        self._sock.close()

    def __repr__(self) -> str:
        return f"<InstrumentedSocket {self._sock!r}>"


def _checked_arguments(sock: Any, fields: Sequence[str], capacity: int) -> tuple[tuple[str, ...], int]:
    """(fields, capacity) of a Recording; TypeError, ValueError for what it cannot take."""
    if isinstance(fields, str):
        raise TypeError("fields must be a sequence of TcpInfo field names, not a string")
    fields = tuple(fields)
    unknown = [name for name in fields if name not in TCP_INFO_FIELDS]
    if unknown:
        raise ValueError(
            f"unknown TcpInfo field(s): {', '.join(map(str, unknown))}; "
            f"known: {', '.join(TCP_INFO_FIELDS)}")
    capacity = COUNT.check(capacity, "capacity")
    if not callable(getattr(sock, "fileno", None)):
        # An int fd could be closed and reused by another socket unseen.
        raise TypeError(f"expected a socket object, not {type(sock).__name__}")
    return fields, capacity


@contextlib.contextmanager
def _ending(rec: Recording, stop_sampler: Callable[[], None]) -> Iterator[None]:
    """Runs a recording's body; then stops the sampler and takes the last sample.

    A sampling error is raised here only if the body did not raise its own.
    """
    body_raised = False
    try:
        yield
    except BaseException:
        body_raised = True
        raise
    finally:
        stop_sampler()
        rec._sample_or_stop()
        if rec.error is not None and not body_raised:
            raise rec.error


def record(sock: Any, interval: Optional[float] = 0.001, fields: Sequence[str] = (),
           capacity: int = DEFAULT_CAPACITY) -> ContextManager[Recording]:
    """Record a socket's send buffer while the ``with`` body runs.

    ``interval`` seconds between samples, taken on a background thread; or
    ``None``: a sample after every send through ``rec.socket``, an
    InstrumentedSocket wrapping ``sock`` (no thread).  ``fields``: TcpInfo
    field names each sample also carries (e.g. ``("rtt_us",
    "snd_cwnd_segs")``).  The newest ``capacity`` samples are kept.

    The first sample is taken on entry (bad input raises there:
    UnsuitableSocket for a closed or listening socket), the last on exit.
    If the program closes the socket, sampling stops and the recording keeps
    what it has (``rec.socket_closed``).  The thread is joined on exit, even
    when the body raises; an error that stopped sampling early is kept in
    ``rec.error`` and raised on exit (unless the body raised).
    Arguments are checked at the call: ValueError for an interval that is
    not above 0 and at most a day (86400 s), a capacity below 1 or an
    unknown field; TypeError for a non-number interval or non-int capacity.
    Availability: Linux, macOS (``fields`` and queue delay need the
    platform's TCP_INFO).
    """
    if interval is not None:
        interval = SAMPLE_INTERVAL.check(interval, "interval")
    _checked_arguments(sock, fields, capacity)
    return _record(sock, interval, fields, capacity)


@contextlib.contextmanager
def _record(sock: Any, interval: Optional[float], fields: Sequence[str],
            capacity: int) -> Iterator[Recording]:
    if interval is None:
        rec = InstrumentedSocket(sock, fields=fields, capacity=capacity).recording
        with _ending(rec, lambda: None):
            yield rec
        return
    rec = Recording(sock, fields, capacity)
    stop = threading.Event()
    thread = threading.Thread(target=_sample_every, args=(rec, interval, stop),
                              name=f"sockdiag-record-fd{sock.fileno()}", daemon=True)
    thread.start()

    def stop_thread() -> None:
        stop.set()
        thread.join()

    with _ending(rec, stop_thread):
        yield rec


def _sample_every(rec: Recording, interval: float, stop: threading.Event) -> None:
    # Deadlines on a fixed grid, so the time a sample takes does not stretch
    # the interval; after a stall the grid restarts instead of bursting.
    try:
        deadline = time.monotonic()
        while True:
            deadline += interval
            wait_s = deadline - time.monotonic()
            if wait_s < 0:
                deadline, wait_s = time.monotonic(), 0
            if stop.wait(wait_s) or not rec._sample_or_stop():
                return
    except Exception as err:  # on the recording, not as the thread's traceback
        rec.error = err


def stream_socket(stream: Any) -> Any:
    """The socket under an asyncio StreamWriter or transport; UnsuitableSocket if none."""
    transport = getattr(stream, "transport", stream)  # a StreamWriter's, or the transport
    get_extra_info = getattr(transport, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if sock is None:
        raise UnsuitableSocket(
            f"{type(stream).__name__} has no socket (get_extra_info('socket') is None)")
    return sock


def record_stream(stream: Any, interval: float = 0.001, fields: Sequence[str] = (),
                  capacity: int = DEFAULT_CAPACITY) -> AsyncContextManager[Recording]:
    """Record the socket under an asyncio StreamWriter or transport.

    ``async with sockdiag.record_stream(writer) as rec:``.  Samples are
    taken by ``loop.call_at`` callbacks every ``interval`` seconds, on the
    event loop itself: no thread, and each sample is a few non-blocking
    syscalls (microseconds), so the loop is never blocked.  When the loop
    is busy, samples come late rather than piling up.  Sampling stops when
    the transport closes.  Other arguments, their checks at the call and
    ``rec.error`` as for ``record``.  Availability: Linux, macOS.
    """
    interval = SAMPLE_INTERVAL.check(interval, "interval")
    sock = stream_socket(stream)
    _checked_arguments(sock, fields, capacity)
    return _record_stream(sock, interval, fields, capacity)


@contextlib.asynccontextmanager
async def _record_stream(sock: Any, interval: float, fields: Sequence[str],
                         capacity: int) -> AsyncIterator[Recording]:
    import asyncio  # only here: importing it costs more than the rest of sockdiag

    rec = Recording(sock, fields, capacity)
    loop = asyncio.get_running_loop()
    handle: Optional[asyncio.TimerHandle] = None

    def tick(deadline: float) -> None:
        nonlocal handle
        if not rec._sample_or_stop():
            handle = None
            return
        deadline = max(deadline + interval, loop.time())
        handle = loop.call_at(deadline, tick, deadline)

    def cancel() -> None:
        if handle is not None:
            handle.cancel()

    first = loop.time() + interval
    handle = loop.call_at(first, tick, first)
    with _ending(rec, cancel):
        yield rec
