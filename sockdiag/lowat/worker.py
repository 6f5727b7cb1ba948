"""The benchmark's two processes: a sender and a receiver of stamped messages.

Each runs in a child forked by the sweep (and moved into its network
namespace on the shaped path; see topology.Path.spawn).  The protocol with
the parent is line-based JSON over two pipes: the worker writes
``{"ready": ...}`` once its sockets are set up, reads one line
``{"start_at_ns", "measure_from_ns", "stop_at_ns"}`` (CLOCK_MONOTONIC,
which every network namespace shares), runs, and writes one result line
(or ``{"error": "..."}``).

Each message is ``message_size`` bytes starting with the CLOCK_MONOTONIC ns
at which the sender wrote it; the receiver subtracts that from the time it
read the message's last byte.  Only what happens between measure_from and
stop_at counts (the steady state, not the start-up); at stop_at both ends
close, the sender with a reset, so nothing waits for buffers to drain.
"""

from __future__ import annotations

import contextlib
import json
import resource
import select
import signal
import socket
import struct
import time
from array import array
from typing import Optional


from .. import _platform
from ..tuner import LowatTuner
from . import delayline, timestamps
from ..stats import percentile, slope
from .units import lowat_target_ms

_STAMP = struct.Struct("<Q")
_SO_MEMINFO = 55
_MEMINFO_WMEM_QUEUED = 5
_MEMINFO = struct.Struct("@9I")
_LOWAT_OFF = 0xFFFFFFFF  # explicit "off", whatever the namespace's sysctl says
_SAMPLE_INTERVAL_NS = 10_000_000
_CONNECT_TIMEOUT_S = 10.0
_CLOSE_GRACE_NS = 2_000_000_000


class WorkerError(Exception):
    """A failure the worker reports to the parent as one line."""


def _ms(nanoseconds):
    return None if nanoseconds is None else nanoseconds / 1e6


class Control:
    """The worker's end of the line-based JSON pipes to the parent."""

    def __init__(self, from_parent, to_parent) -> None:
        self.from_parent = from_parent
        self.to_parent = to_parent

    def read_schedule(self) -> tuple[int, int, int]:
        line = self.from_parent.readline()
        if not line:
            raise WorkerError("the parent closed the control pipe before the start")
        schedule = json.loads(line)
        return schedule["start_at_ns"], schedule["measure_from_ns"], schedule["stop_at_ns"]

    def reply(self, message: dict) -> None:
        self.to_parent.write(json.dumps(message) + "\n")
        self.to_parent.flush()


# --- receiver ----------------------------------------------------------------


def receive(config: dict, control: Control) -> dict:
    """Accept the flows, read stamped messages, return latency and goodput."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((config["host"], config["port"]))
    listener.listen(max(128, config["flows"]))
    control.reply({"ready": True, "port": listener.getsockname()[1]})
    start_at, measure_from, stop_at = control.read_schedule()

    listener.settimeout(_CONNECT_TIMEOUT_S)
    connections = []
    try:
        for _ in range(config["flows"]):
            connection, _ = listener.accept()
            connections.append(connection)
    except socket.timeout:
        raise WorkerError(f"only {len(connections)} of {config['flows']} flows connected") from None
    finally:
        listener.close()

    message_size = config["message_size"]
    poller = select.epoll()
    pending = {}
    for connection in connections:
        connection.setblocking(False)
        poller.register(connection.fileno(), select.EPOLLIN)
        pending[connection.fileno()] = (connection, bytearray())
    latencies_ns = array("q")
    window_bytes = 0
    # (time, bytes read so far) after each read in the window, for the goodput.
    read_at_ns = array("q")
    read_bytes = array("q")
    # The sender resets its flows at stop_at; reading on until then avoids
    # resetting them from this side while the sender still writes.
    deadline = stop_at + _CLOSE_GRACE_NS
    while pending:
        now = time.monotonic_ns()
        if now >= deadline:
            break
        for fd, _events in poller.poll((deadline - now) / 1e9):
            connection, buffer = pending[fd]
            try:
                data = connection.recv(1 << 18)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            now = time.monotonic_ns()
            if not data:
                poller.unregister(fd)
                del pending[fd]
                continue
            counting = measure_from <= now < stop_at
            if counting:
                window_bytes += len(data)
                read_at_ns.append(now)
                read_bytes.append(window_bytes)
            buffer += data
            while len(buffer) >= message_size:
                if counting:
                    latencies_ns.append(now - _STAMP.unpack_from(buffer)[0])
                del buffer[:message_size]
    for connection in connections:
        connection.close()
    bytes_per_ns = slope(read_at_ns, read_bytes)
    return {
        "throughput_bps": None if bytes_per_ns is None else bytes_per_ns * 8e9,
        "messages": len(latencies_ns),
        "latency_p50_ms": _ms(percentile(latencies_ns, 0.50)),
        "latency_p99_ms": _ms(percentile(latencies_ns, 0.99)),
    }


# --- sender ------------------------------------------------------------------


class _Flow:
    """One connection of the sender and its message in progress."""

    __slots__ = ("sock", "fd", "tuner", "template", "rest", "written", "messages", "stamped")

    def __init__(self, sock: socket.socket, message_size: int,
                 tuner: Optional[LowatTuner]) -> None:
        self.sock = sock
        self.tuner = tuner  # for a time-target lowat
        self.fd = sock.fileno()
        self.template = bytearray(b"m" * message_size)
        self.rest = None  # memoryview of the unwritten tail of the current message
        self.written = 0  # bytes accepted by the kernel so far
        self.messages = 0
        # byte offset of a stamped write's last byte (mod 2**32) ->
        # (CLOCK_REALTIME ns before the write, whether it counts)
        self.stamped = {}


def _connect(config: dict) -> _Flow:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, config["cc"].encode())
    except PermissionError:
        raise WorkerError(
            f"congestion control {config['cc']!r} is not allowed here "
            "(net.ipv4.tcp_allowed_congestion_control; root may use any available one)") from None
    if config["sndbuf"] is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, config["sndbuf"])
    if config["nodelay"]:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(_CONNECT_TIMEOUT_S)
    sock.connect((config["host"], config["port"]))
    lowat = config["lowat"]
    target_ms = lowat_target_ms(lowat)
    tuner = None
    if target_ms is not None:
        tuner = LowatTuner(sock, target_ms=target_ms)
        lowat = tuner.lowat_bytes
    else:
        _platform.set_notsent_lowat(sock, _LOWAT_OFF if lowat is None else lowat)
    if _platform.get_notsent_lowat(sock) != lowat:
        raise WorkerError(f"TCP_NOTSENT_LOWAT {lowat} did not take effect")
    if config["stamp_every"]:
        timestamps.enable(sock)
    sock.setblocking(False)
    return _Flow(sock, config["message_size"], tuner)


class _Sender:
    """The sending loop: writes, wakeups, 10 ms samples and timestamps."""

    def __init__(self, config: dict, flows: list[_Flow]) -> None:
        self.config = config
        self.flows = flows
        self.by_fd = {flow.fd: flow for flow in flows}
        self.one_per_wakeup = config["writer"] == "epollout"
        self.stamp_every = config["stamp_every"]
        self.send_flags = socket.MSG_EOR if config["eor"] else 0
        self.stamp_cmsg = timestamps.write_cmsg()
        self.counting = False
        self.send_calls = 0
        self.eagains = 0
        self.wakeups = 0
        self.window_bytes = 0
        self.sched_ns = array("q")
        self.ack_ns = array("q")
        self.unsent = array("q")
        self.unacked = array("q")
        self.sndbuf = array("q")
        self.memory = array("q")
        self.rtt_us = array("q")
        self.lowat = array("q")
        self.tuners = [flow.tuner for flow in flows if flow.tuner is not None]
        self.tuner_counts_before = (0, 0)
        self.tcp_info_before = None

    def write(self, flow: _Flow) -> bool:
        """One send call on flow; False when the kernel refused (EAGAIN)."""
        stamp = False
        if flow.rest is None:
            _STAMP.pack_into(flow.template, 0, time.monotonic_ns())
            flow.rest = memoryview(flow.template)
            flow.messages += 1
            stamp = self.stamp_every and flow.messages % self.stamp_every == 0
        if self.counting:
            self.send_calls += 1
        try:
            if stamp:
                # MSG_EOR keeps later writes out of this skb: its stamp is ours.
                before = time.clock_gettime_ns(time.CLOCK_REALTIME)
                sent = flow.sock.sendmsg([flow.rest], self.stamp_cmsg, socket.MSG_EOR)
            else:
                sent = flow.sock.send(flow.rest, self.send_flags)
        except BlockingIOError:
            if self.counting:
                self.eagains += 1
            return False
        flow.written += sent
        if self.counting:
            self.window_bytes += sent
        if stamp:
            flow.stamped[(flow.written - 1) & 0xFFFFFFFF] = (before, self.counting)
        flow.rest = flow.rest[sent:] if sent < len(flow.rest) else None
        return True

    def read_timestamps(self, flow: _Flow) -> None:
        """Drain flow's error queue, pairing each stamp with its write."""
        while True:
            try:
                _data, ancdata, _flags, _address = flow.sock.recvmsg(
                    1, timestamps.ANCILLARY_BUFSIZE, socket.MSG_ERRQUEUE)
            except BlockingIOError:
                return
            stamp = timestamps.decode_errqueue(ancdata)
            if stamp is None or stamp.byte_offset not in flow.stamped:
                continue
            written_ns, counts = flow.stamped[stamp.byte_offset]
            if stamp.event == "sched":
                if counts:
                    self.sched_ns.append(stamp.realtime_ns - written_ns)
            elif stamp.event == "ack":
                del flow.stamped[stamp.byte_offset]
                if counts:
                    self.ack_ns.append(stamp.realtime_ns - written_ns)

    def sample(self, with_rtt: bool) -> None:
        """Where each flow's bytes are now; socket memory summed over flows."""
        memory = 0
        for flow in self.flows:
            split = _platform.send_buffer(flow.sock)
            self.unsent.append(split.unsent)
            self.unacked.append(split.unacked)
            self.sndbuf.append(split.size)
            meminfo = flow.sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO.size)
            memory += _MEMINFO.unpack(meminfo)[_MEMINFO_WMEM_QUEUED]
            if flow.tuner is not None:
                self.lowat.append(flow.tuner.lowat_bytes)
            if with_rtt:
                self.rtt_us.append(_platform.tcp_info(flow.sock).rtt_us)
        self.memory.append(memory)

    def run(self, start_at: int, measure_from: int, stop_at: int) -> dict:
        poller = select.epoll()
        for flow in self.flows:
            poller.register(flow.fd, select.EPOLLOUT)
        # The error queue (timestamps) wakes epoll with EPOLLERR.
        errors = select.EPOLLERR | select.EPOLLHUP
        now = time.monotonic_ns()
        if start_at > now:
            time.sleep((start_at - now) / 1e9)
        usage_before = None
        next_sample = measure_from
        samples = 0
        while True:
            now = time.monotonic_ns()
            if now >= stop_at:
                break
            if not self.counting and now >= measure_from:
                self.counting = True
                usage_before = resource.getrusage(resource.RUSAGE_SELF)
                self.tuner_counts_before = self.tuner_counts()
                self.tcp_info_before = [_platform.tcp_info(flow.sock) for flow in self.flows]
            if now >= next_sample:
                if self.counting:
                    # TCP_INFO costs more than the split; the RTT every 100 ms is enough.
                    self.sample(with_rtt=samples % 10 == 0)
                    samples += 1
                next_sample = max(next_sample + _SAMPLE_INTERVAL_NS, now + 1)
            for tuner in self.tuners:
                tuner.maybe_update()
            timeout_ns = min(next_sample, stop_at) - now
            for fd, events in poller.poll(timeout_ns / 1e9):
                flow = self.by_fd[fd]
                if events & errors:
                    self.read_timestamps(flow)
                if events & select.EPOLLOUT:
                    if self.counting:
                        self.wakeups += 1
                    if self.one_per_wakeup:
                        self.write(flow)
                    else:
                        # Until EAGAIN, or until the next sample is due: a
                        # receiver as fast as the sender never says EAGAIN.
                        limit = min(next_sample, stop_at)
                        while self.write(flow) and time.monotonic_ns() < limit:
                            pass
        usage_after = resource.getrusage(resource.RUSAGE_SELF)
        tcp_info_after = [_platform.tcp_info(flow.sock) for flow in self.flows]
        for flow in self.flows:
            self.read_timestamps(flow)
        return self.result(usage_before, usage_after, tcp_info_after)

    def tuner_counts(self) -> tuple[int, int]:
        """TCP_INFO reads and limit changes of the flows' LowatTuners so far."""
        return (sum(tuner.updates for tuner in self.tuners),
                sum(tuner.changes for tuner in self.tuners))

    def retrans_pct(self, tcp_info_after) -> Optional[float]:
        """Bytes retransmitted in the window, in percent of the bytes sent."""
        pairs = list(zip(self.tcp_info_before, tcp_info_after))
        if any(info.bytes_sent is None for pair in pairs for info in pair):
            return None
        sent = sum(after.bytes_sent - before.bytes_sent for before, after in pairs)
        retrans = sum(after.bytes_retrans - before.bytes_retrans for before, after in pairs)
        return 100.0 * retrans / sent if sent else None

    def result(self, before, after, tcp_info_after) -> dict:
        megabytes = self.window_bytes / 1e6
        per_mb = (lambda count: count / megabytes) if megabytes else (lambda count: None)
        updates, changes = (after - before for after, before
                            in zip(self.tuner_counts(), self.tuner_counts_before))
        return {
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "ctx_switches": after.ru_nvcsw - before.ru_nvcsw,
            "send_calls_per_mb": per_mb(self.send_calls),
            "eagains_per_mb": per_mb(self.eagains),
            "wakeups_per_mb": per_mb(self.wakeups),
            "sched_p50_ms": _ms(percentile(self.sched_ns, 0.50)),
            "sched_p99_ms": _ms(percentile(self.sched_ns, 0.99)),
            "ack_p50_ms": _ms(percentile(self.ack_ns, 0.50)),
            "unsent_p50_bytes": percentile(self.unsent, 0.50),
            "unacked_p50_bytes": percentile(self.unacked, 0.50),
            "sndbuf_p50_bytes": percentile(self.sndbuf, 0.50),
            "sock_mem_p50_bytes": percentile(self.memory, 0.50),
            "retrans_pct": self.retrans_pct(tcp_info_after),
            "rtt_p50_ms": None if not self.rtt_us else percentile(self.rtt_us, 0.50) / 1e3,
            "lowat_p50_bytes": percentile(self.lowat, 0.50),
            "lowat_updates_per_mb": per_mb(updates) if self.tuners else None,
            "lowat_changes_per_mb": per_mb(changes) if self.tuners else None,
        }


def send(config: dict, control: Control) -> dict:
    """Connect the flows, write stamped messages as fast as allowed, return the costs."""
    flows = [_connect(config) for _ in range(config["flows"])]
    control.reply({"ready": True})
    start_at, measure_from, stop_at = control.read_schedule()
    try:
        return _Sender(config, flows).run(start_at, measure_from, stop_at)
    finally:
        for flow in flows:
            # A reset drops what is still queued: the next run starts on an empty path.
            flow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            flow.sock.close()


# --- delay line ----------------------------------------------------------------


def delay(config: dict, control: Control) -> dict:
    """Create the TUN device of the delay line and forward through it until killed."""
    fd = delayline.open_device()
    control.reply({"ready": True, "realtime": delayline.run_realtime()})
    delayline.forward(fd, config["delay_us"] * 1000)
    return {}  # not reached: the run kills the delay line when it ends


_ROLES = {"receive": ("receiver", receive), "send": ("sender", send),
          "delay": ("delay line", delay)}


def run(role: str, config: dict, control: Control) -> int:
    """Run a worker ("send" or "receive") to its end; the exit status.

    Every failure becomes an error line for the parent, never a traceback.
    """
    # The parent handles Ctrl-C and ends the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name, work = _ROLES[role]
    try:
        result = work(config, control)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises it
        with contextlib.suppress(OSError):
            control.reply({"error": f"{name}: {err}"})
        return 1
    control.reply(result)
    return 0
