"""The path the benchmark measures: a shaped three-namespace link, or loopback.

Shaped (root, network namespaces, iproute2)::

    sender --veth-- router --veth-- receiver
                          ^ TBF bottleneck on the router's egress

The bottleneck sits on the router, not on the sender: shaping the sender's
own egress lets TCP Small Queues keep the backlog inside the socket and
hides the effect being measured.  The base RTT is a delay on the ACK path:
netem on the receiver's egress when the kernel has it (detected, not
assumed), else a user-space delay line through a TUN device in the router
namespace (see delayline).  The TBF's rate can change between runs
(Path.set_rate), so one path serves a sweep over rates.

Namespaces are named ``sdlowat-<pid>-<start time>-<role>`` after the run
that made them, so a new run can tell the leftovers of a killed run (whose
process is gone) from a concurrent run's, and remove only those.  Worker
processes are forked children that get SIGKILL when the run dies
(PR_SET_PDEATHSIG), and are killed before their namespace is removed.

Without root or namespaces the benchmark runs on plain loopback: there is
no bottleneck, so only the cost side (wakeups, CPU, memory) is meaningful.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import json
import select
import time
from typing import Iterable, Iterator, Optional, Sequence

from .. import _platform
from .._common import FrozenStruct
from .._exceptions import NotSupported, SockdiagError
from ..interrupts import signals_as_interrupt
from . import delayline, worker

PREFIX = "sdlowat"
_NETNS_DIR = "/run/netns"
_NAME = re.compile(rf"{PREFIX}-(\d+)-(\d+)-(snd|rtr|rcv)")
_ROLES = ("snd", "rtr", "rcv")
_SENDER_ADDRESS = "10.250.1.1"
_ROUTER_SENDER_SIDE = "10.250.1.2"
_ROUTER_RECEIVER_SIDE = "10.250.2.1"
_RECEIVER_ADDRESS = "10.250.2.2"
# The TBF's bucket: at most 32 KiB, at most half the queue, at least two
# full-sized frames (a smaller bucket never lets a frame through).
_TBF_BURST_MAX_BYTES = 32 * 1024
_FRAME_BYTES = 1514
_COMMAND_TIMEOUT_S = 20
_PR_SET_PDEATHSIG = 1
_CLONE_NEWNET = 0x40000000
_CLEANUP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Time for a forked worker to set up its sockets or device.
READY_TIMEOUT_S = 30.0


class PathInfo(FrozenStruct):
    """What the benchmark ran over.

    ``kind``: "shaped" (three namespaces, TBF on the router) or "loopback"
    (no bottleneck).  ``rates_bps``: the bottleneck rates swept, empty on
    loopback.  ``queue_latency_ms``: TBF's queue limit expressed as time.
    ``delay_ms``: the delay on the ACK path; None when none was added.
    ``delay_via``: what adds it: "netem", or "tun delay line" (user space,
    when the kernel has no netem); None without a delay.
    ``netem``: whether the kernel offers netem (None when not checked).
    ``notices``: what the user must know to read the figures.
    """

    kind: str
    rates_bps: tuple[int, ...]
    queue_latency_ms: Optional[float]
    delay_ms: Optional[float]
    delay_via: Optional[str]
    netem: Optional[bool]
    namespaces: tuple[str, ...]
    kernel: str
    tcp_wmem: Optional[tuple[int, int, int]]
    notices: tuple[str, ...]


class SetupError(NotSupported):
    """The shaped path could not be built."""


class RateAboveCeiling(SockdiagError):
    """A rate the delay line cannot keep up with."""


def _run(argv: list[str]) -> str:
    """Run an iproute2 command; its stdout, or SetupError with its last stderr line."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=_COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise SetupError(f"{' '.join(argv)}: {err}") from err
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise SetupError(f"{' '.join(argv)}: {lines[-1]}")
    return done.stdout


def _start_time(pid: int) -> Optional[int]:
    """A process's start time in clock ticks since boot (with the pid, a unique id)."""
    try:
        return int(_platform.process_stat_fields(pid)[19])
    except SockdiagError:
        return None


def _namespace_names() -> list[str]:
    try:
        return sorted(os.listdir(_NETNS_DIR))
    except FileNotFoundError:
        return []


def _remove_namespace(name: str) -> Optional[str]:
    """Kill what runs in a namespace, then delete it; an error message or None."""
    with contextlib.suppress(SetupError):
        for pid in _run(["ip", "netns", "pids", name]).split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    try:
        _run(["ip", "netns", "delete", name])
    except SetupError as err:
        return str(err)
    return None


def remove_leftovers() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone; their names.

    Namespaces of a run still alive (another terminal, a concurrent test)
    are left alone.
    """
    removed = []
    for name in _namespace_names():
        match = _NAME.fullmatch(name)
        if match is None:
            continue
        pid, started = int(match.group(1)), int(match.group(2))
        if _start_time(pid) == started:
            continue
        if _remove_namespace(name) is None:
            removed.append(name)
    return removed


def _die_with(parent_pid: int) -> None:
    """In a forked child: get SIGKILL when the run that forked it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # it died before prctl took effect
        os._exit(1)


def _enter_namespace(name: str) -> None:
    """Move the calling process into network namespace name (as `ip netns exec`)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(os.path.join(_NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)


class Worker:
    """A forked worker process and the parent's ends of its control pipes."""

    def __init__(self, pid: int, to_worker, from_worker) -> None:
        self.pid = pid
        self.to_worker = to_worker
        self.from_worker = from_worker
        self.status: Optional[int] = None

    def wait(self, timeout_s: float) -> Optional[int]:
        """Reap the worker within timeout_s (killing it after); its wait status."""
        deadline = time.monotonic() + timeout_s
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
            elif time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self.status = os.waitpid(self.pid, 0)[1]
            else:
                time.sleep(0.01)
        return self.status

    def read_message(self, deadline: float, what: str) -> dict:
        """One JSON line from the worker, or SockdiagError saying what went wrong."""
        ready, _, _ = select.select([self.from_worker], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise SockdiagError(f"the {what} did not answer in time")
        line = self.from_worker.readline()
        if not line:
            raise SockdiagError(f"the {what} ended without a result ({self.describe_exit()})")
        message = json.loads(line)
        if "error" in message:
            raise SockdiagError(message["error"])
        return message

    def send_message(self, message: dict) -> None:
        self.to_worker.write(json.dumps(message) + "\n")
        self.to_worker.flush()

    def describe_exit(self) -> str:
        """How the worker ended, in words ("exit status 1", "killed by signal 9")."""
        status = self.wait(5.0)
        if os.WIFSIGNALED(status):
            return f"killed by signal {os.WTERMSIG(status)}"
        return f"exit status {os.waitstatus_to_exitcode(status)}"

    def close(self) -> None:
        for stream in (self.to_worker, self.from_worker):
            with contextlib.suppress(OSError):
                stream.close()


def _tcp_wmem(namespace: Optional[str]) -> Optional[tuple[int, int, int]]:
    argv = ["cat", "/proc/sys/net/ipv4/tcp_wmem"]
    if namespace is not None:
        argv = ["ip", "netns", "exec", namespace] + argv
    try:
        low, default, high = (int(value) for value in _run(argv).split())
    except (SetupError, ValueError):
        return None
    return low, default, high


class Path:
    """A path made for one benchmark run: where workers run and what to connect to."""

    def __init__(self, info: PathInfo, receiver_host: str,
                 namespaces: Optional[dict[str, str]] = None) -> None:
        self.info = info
        self.receiver_host = receiver_host
        self._namespaces = namespaces or {}
        self._workers: list[Worker] = []

    def set_rate(self, rate_bps: int) -> None:
        """Make the bottleneck rate_bps (replaces the router's TBF); nothing on loopback."""
        if "rtr" in self._namespaces:
            _shape(self._namespaces["rtr"], rate_bps, round(self.info.queue_latency_ms * 1e3))

    def spawn(self, role: str, config: dict) -> Worker:
        """Fork a worker (role "send", "receive" or "delay") into its namespace.

        Forked, not executed: no interpreter start per run, and it works
        whatever the interpreter's path (an unprivileged user may not be
        able to exec a venv's interpreter that points into /root).
        """
        namespace = self._namespaces.get(_ROLE_NAMESPACES[role])
        down_read, down_write = os.pipe()
        up_read, up_write = os.pipe()
        parent_pid = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker: never returns into the caller's code
            status = 1
            try:
                os.close(down_write)
                os.close(up_read)
                for other in self._workers:
                    other.close()
                _die_with(parent_pid)
                for signum in (signal.SIGTERM, signal.SIGHUP):
                    signal.signal(signum, signal.SIG_DFL)
                control = worker.Control(os.fdopen(down_read), os.fdopen(up_write, "w"))
                try:
                    if namespace is not None:
                        _enter_namespace(namespace)
                except OSError as err:
                    control.reply({"error": f"{role} worker: {err}"})
                else:
                    status = worker.run(role, config, control)
            finally:
                os._exit(status)
        os.close(down_read)
        os.close(up_write)
        child = Worker(pid, os.fdopen(down_write, "w"), os.fdopen(up_read))
        self._workers.append(child)
        return child

    def end(self, child: Worker) -> None:
        """Kill a worker (if still running), reap it and close its pipes."""
        if child.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        child.wait(0.0)
        child.close()
        if child in self._workers:
            self._workers.remove(child)

    def end_all(self) -> None:
        for child in list(self._workers):
            self.end(child)


_ROLE_NAMESPACES = {"send": "snd", "receive": "rcv", "delay": "rtr"}


def tbf_sizes(rate_bps: int, queue_latency_us: int) -> tuple[int, int]:
    """(queue limit, bucket) in bytes of the bottleneck's TBF.

    The queue holds queue_latency_us of traffic at rate_bps, as
    --queue-latency says.  tc's own ``latency`` adds the bucket to the
    queue: with a 32 KiB bucket, a 50 ms queue at 2 Mbit/s held 178 ms.
    """
    limit = max(2 * _FRAME_BYTES, rate_bps * queue_latency_us // 8_000_000)
    burst = max(2 * _FRAME_BYTES, min(_TBF_BURST_MAX_BYTES, limit // 2))
    return limit, burst


def _shape(router: str, rate_bps: int, queue_latency_us: int) -> None:
    limit, burst = tbf_sizes(rate_bps, queue_latency_us)
    _run(["tc", "-n", router, "qdisc", "replace", "dev", "sdlw-rtr-r", "root", "tbf",
          "rate", f"{rate_bps}bit", "burst", str(burst), "limit", str(limit)])


def _build_shaped(names: dict[str, str], rate_bps: int, queue_latency_us: int) -> None:
    """Make the three namespaces and their links, the bottleneck at rate_bps."""
    snd, rtr, rcv = names["snd"], names["rtr"], names["rcv"]
    for name in (snd, rtr, rcv):
        _run(["ip", "netns", "add", name])
    # Link names only need to be unique inside their namespace.
    _run(["ip", "-n", snd, "link", "add", "sdlw-snd", "type", "veth",
          "peer", "name", "sdlw-rtr-s", "netns", rtr])
    _run(["ip", "-n", rtr, "link", "add", "sdlw-rtr-r", "type", "veth",
          "peer", "name", "sdlw-rcv", "netns", rcv])
    for namespace, device, address in (
            (snd, "sdlw-snd", _SENDER_ADDRESS), (rtr, "sdlw-rtr-s", _ROUTER_SENDER_SIDE),
            (rtr, "sdlw-rtr-r", _ROUTER_RECEIVER_SIDE), (rcv, "sdlw-rcv", _RECEIVER_ADDRESS)):
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/24", "dev", device])
        _run(["ip", "-n", namespace, "link", "set", device, "up"])
    for namespace in (snd, rtr, rcv):
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
    _run(["ip", "-n", snd, "route", "add", "default", "via", _ROUTER_SENDER_SIDE])
    _run(["ip", "-n", rcv, "route", "add", "default", "via", _ROUTER_RECEIVER_SIDE])
    _run(["ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    # Each run starts from scratch, not from the last run's cached cwnd/ssthresh.
    _run(["ip", "netns", "exec", snd, "sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1"])
    _shape(rtr, rate_bps, queue_latency_us)


def _add_netem(names: dict[str, str], delay_us: int) -> Optional[str]:
    """netem delay on the receiver's egress (the ACK path); None, or why it failed."""
    try:
        _run(["tc", "-n", names["rcv"], "qdisc", "replace", "dev", "sdlw-rcv", "root", "netem",
              "delay", f"{delay_us}us"])
    except SetupError as err:
        return str(err)
    return None


def _check_delay_line_rates(rates_bps: Sequence[int]) -> None:
    too_fast = [rate for rate in rates_bps if delayline.packets_per_s(rate)
                > delayline.CEILING_PACKETS_PER_S]
    if too_fast:
        raise RateAboveCeiling(
            f"--rate {max(too_fast) / 1e6:g} Mbit/s is above what the user-space delay line "
            f"(no netem in this kernel) forwards: at most {delayline.CEILING_PACKETS_PER_S:,} "
            f"packets/s, rates up to {delayline.max_rate_bps() / 1e6:g} Mbit/s; "
            "lower the rate or use --delay 0")


def _start_delay_line(path: "Path", names: dict[str, str], delay_us: int) -> bool:
    """The TUN delay line in the router namespace, on the path from the receiver;
    whether it runs under the real-time scheduler."""
    rtr = names["rtr"]
    line = path.spawn("delay", {"delay_us": delay_us})
    realtime = line.read_message(time.monotonic() + READY_TIMEOUT_S, "delay line")["realtime"]
    _run(["ip", "netns", "exec", rtr, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
          f"net.ipv4.conf.{delayline.DEVICE}.rp_filter=0"])
    _run(["ip", "-n", rtr, "link", "set", delayline.DEVICE, "up"])
    _run(["ip", "-n", rtr, "route", "add", "default", "dev", delayline.DEVICE,
          "table", delayline.ROUTE_TABLE])
    _run(["ip", "-n", rtr, "rule", "add", "iif", "sdlw-rtr-r", "lookup", delayline.ROUTE_TABLE])
    return realtime


def _shaped_unavailable() -> Optional[str]:
    if os.geteuid() != 0:
        return "not root"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces"
    for tool in ("ip", "tc", "sysctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (iproute2, procps)"
    return None


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Cleanup must finish even if Ctrl-C is pressed again."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _CLEANUP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _shaped_path(rates_bps: Sequence[int], queue_latency_us: int, delay_us: int,
                 notices: list[str]) -> Path:
    """Build the three namespaces and the delay; SetupError (having removed them) if that fails."""
    removed = remove_leftovers()
    if removed:
        notices.append(f"removed leftovers of a killed run: {' '.join(removed)}")
    pid = os.getpid()
    names = {role: f"{PREFIX}-{pid}-{_start_time(pid)}-{role}" for role in _ROLES}
    path = Path(None, _RECEIVER_ADDRESS, names)  # type: ignore[arg-type]
    try:
        _build_shaped(names, rates_bps[0], queue_latency_us)
        netem, delay_via = None, None
        if delay_us:
            netem_error = _add_netem(names, delay_us)
            netem = netem_error is None
            if netem:
                delay_via = "netem"
            else:
                _check_delay_line_rates(rates_bps)
                realtime = _start_delay_line(path, names, delay_us)
                delay_via = "tun delay line"
                notices.append(
                    "netem is not available in this kernel: the delay comes from a user-space "
                    f"delay line (TUN device {delayline.DEVICE} in the router namespace, "
                    f"up to {delayline.CEILING_PACKETS_PER_S:,} packets/s) "
                    f"({netem_error})")
                if not realtime:
                    notices.append(
                        "the delay line could not use the real-time scheduler: on a busy "
                        "machine it holds packets longer than the delay and releases them "
                        "in bunches")
        path.info = PathInfo(
            kind="shaped", rates_bps=tuple(rates_bps), queue_latency_ms=queue_latency_us / 1e3,
            delay_ms=delay_us / 1e3 if delay_via else None, delay_via=delay_via, netem=netem,
            namespaces=tuple(names[role] for role in _ROLES), kernel=os.uname().release,
            tcp_wmem=_tcp_wmem(names["snd"]), notices=tuple(notices))
    except BaseException:  # a failed build leaves nothing behind
        path.end_all()
        _remove_all(names.values())
        raise
    return path


def _loopback_path(reason: str, notices: list[str]) -> Path:
    notices.append(
        f"no bottleneck: running on plain loopback ({reason}); the shaped path needs root "
        "and network namespaces, so only the costs (CPU, wakeups, memory) mean anything "
        "here, not latency against goodput")
    info = PathInfo(
        kind="loopback", rates_bps=(), queue_latency_ms=None, delay_ms=None, delay_via=None,
        netem=None, namespaces=(), kernel=os.uname().release, tcp_wmem=_tcp_wmem(None),
        notices=tuple(notices))
    return Path(info, "127.0.0.1")


def _make_path(rates_bps: Sequence[int], queue_latency_us: int, delay_us: int) -> Path:
    notices: list[str] = []
    reason = _shaped_unavailable()
    if reason is None:
        try:
            return _shaped_path(rates_bps, queue_latency_us, delay_us, notices)
        except SetupError as err:
            reason = str(err)
    return _loopback_path(reason, notices)


@contextlib.contextmanager
def open_path(rates_bps: Sequence[int], queue_latency_us: int, delay_us: int) -> Iterator[Path]:
    """The shaped path (or loopback when it cannot be made), removed on exit.

    Its bottleneck starts at rates_bps[0]; every rate is checked against
    the delay line's ceiling when the delay needs it (RateAboveCeiling).
    Removes leftovers of killed runs first.  Cleanup runs on normal exit,
    on errors, on Ctrl-C, SIGTERM and SIGHUP.
    """
    with signals_as_interrupt():
        # Setup runs with these signals blocked: one that comes meanwhile is
        # delivered once the path exists and its cleanup below is armed.
        unblocked = signal.pthread_sigmask(signal.SIG_BLOCK, _CLEANUP_SIGNALS)
        try:
            path = _make_path(rates_bps, queue_latency_us, delay_us)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
            raise
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, unblocked)
            yield path
        finally:
            with _signals_blocked():
                path.end_all()
                failures = _remove_all(path.info.namespaces)
            if failures:
                print(f"sockdiag: could not remove: {'; '.join(failures)}", file=sys.stderr)


def _remove_all(names: Iterable[str]) -> list[str]:
    """Remove those of the namespaces that exist; the error messages."""
    existing = set(_namespace_names())
    return [error for name in names if name in existing
            for error in [_remove_namespace(name)] if error]
