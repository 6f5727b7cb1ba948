"""Who opened a connection, even one that lives shorter than a sample (Linux, root).

The kernel's ``sock:inet_sock_set_state`` tracepoint fires in the connecting
task when a socket goes CLOSE -> SYN_SENT, before the first byte, so the
event's tgid is the process that called connect().  Its source port is still
0 then (the kernel picks it right after), so the socket's address in the
kernel (``skaddr``) ties that event to the socket's next one (SYN_SENT ->
ESTABLISHED or CLOSE), which carries the ports.  The result is a map from a
connection's endpoints to the connecting process, which ``TrafficAccountant``
consults for sockets it never saw in any process's fds.

The events are read in the kernel's binary form from the per-CPU
``trace_pipe_raw`` files of a tracefs instance of sockdiag's own
(``instances/sockdiag-<pid>``), so no other user of tracing is disturbed and
the kernel formats nothing (its text output costs about 9 us an event).
The instance is removed by ``close()`` (also at interpreter exit), and
instances of sockdiag runs that were killed are removed when the next one
starts.  tracefs is mounted at /sys/kernel/tracing when it is not mounted
anywhere.  Why tracefs rather than eBPF: docs/top.md.
"""

from __future__ import annotations

import atexit
import collections
import errno
import os
import re
import time
from dataclasses import dataclass
from typing import Optional

from . import _fast, _features, _platform
from ._exceptions import AccessDenied, NotSupported

INSTANCE_PREFIX = "sockdiag-"
_EVENT = _platform.TRACEPOINT_EVENT
_TCP_SYN_SENT, _TCP_CLOSE = 2, 7
_AF_INET = 2
# CLOSE -> SYN_SENT (the connecting task) and every way out of SYN_SENT.
_FILTER = f"protocol == 6 && ((oldstate == {_TCP_CLOSE} && newstate == {_TCP_SYN_SENT}) " \
          f"|| oldstate == {_TCP_SYN_SENT})"
_BUFFER_KB_PER_CPU = 4096
_DEFAULT_MOUNT = "/sys/kernel/tracing"

# The event's fields this module reads, by their names in its format file;
# the kernel's records are decoded by _fast.trace_page_events.
_FIELDS = ("common_type", "common_pid", "skaddr", "oldstate", "newstate", "sport", "dport",
           "family", "saddr", "daddr", "saddr_v6", "daddr_v6")
_FORMAT_LINE = re.compile(r"field:.*?(\w+)(?:\[\d+\])?;\s*offset:(\d+);\s*size:(\d+);")


def event_layout(format_text: str) -> tuple[tuple[int, int], ...]:
    """(offset, size) of each of _FIELDS in one event record, from its format file.

    Read from the file, so a kernel that moves a field is read right;
    ValueError when a field is missing.
    """
    found = {name: (int(offset), int(size))
             for name, offset, size in _FORMAT_LINE.findall(format_text)}
    missing = [name for name in _FIELDS if name not in found]
    if missing:
        raise ValueError(f"inet_sock_set_state has no field {missing[0]}")
    return tuple(found[name] for name in _FIELDS)


def _subbuffer_bytes(instance: str) -> int:
    """The size of the trace ring buffer's pages: buffer_subbuf_size_kb (Linux
    6.8+, where it can be set), else one memory page, as the kernel fixed it."""
    try:
        with open(os.path.join(instance, "buffer_subbuf_size_kb")) as f:
            return int(f.read()) * 1024
    except FileNotFoundError:
        return os.sysconf("SC_PAGE_SIZE")


@dataclass(slots=True, eq=False)  # not frozen: a frozen __init__ costs a microsecond a connection
class Connect:
    """A connection opened by a traced process: its endpoints."""

    tgid: int
    family: int  # AF_INET or AF_INET6
    local_port: int
    remote_port: int
    # 16 bytes as sock_diag gives them (an IPv4 address: its 4 bytes, then zeros).
    local_address: bytes
    remote_address: bytes
    seen: float  # time.monotonic() when its ports were known


def _mount_tracefs() -> str:
    mount = _platform.tracefs_mount()
    if mount is not None:
        return mount
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", _DEFAULT_MOUNT.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tracefs on {_DEFAULT_MOUNT}: {os.strerror(err)}")
    return _DEFAULT_MOUNT


def remove_instance(path: str) -> None:
    """Disable the event and remove a tracefs instance (already gone: nothing to do)."""
    try:
        with open(os.path.join(path, _EVENT, "enable"), "w") as f:
            f.write("0")
    except OSError:
        pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass


def remove_leftovers(mount: str) -> list[str]:
    """Remove the instances of sockdiag runs that no longer exist; their names."""
    removed = []
    instances = os.path.join(mount, "instances")
    for name in os.listdir(instances):
        if not name.startswith(INSTANCE_PREFIX):
            continue
        owner = name[len(INSTANCE_PREFIX):]
        if owner.isdigit() and _platform.process_state(int(owner)) is None:
            remove_instance(os.path.join(instances, name))
            removed.append(name)
    return removed


class ConnectTracer:
    """Reads the connecting process of new TCP connections from the kernel.

    ``read()`` takes the events since the last call and returns the
    connections whose ports became known; ``owner()`` looks up one.  Needs
    root (CAP_SYS_ADMIN): AccessDenied otherwise, NotSupported when the
    kernel has no such tracepoint.  Availability: Linux.
    """

    def __init__(self, keep_s: float = 30.0) -> None:
        if _features.assumed_absent("inet_sock_set_state"):
            raise NotSupported("this kernel has no sock:inet_sock_set_state tracepoint (Linux 4.16)")
        if os.geteuid() != 0:
            raise AccessDenied(msg="tracing connects needs root (CAP_SYS_ADMIN)")
        try:
            mount = _mount_tracefs()
        except PermissionError as err:
            raise AccessDenied(msg=f"tracing connects: {err.strerror}") from err
        except OSError as err:
            raise NotSupported(f"tracing connects: {err.strerror}") from err
        if not os.path.isdir(os.path.join(mount, _EVENT)):
            raise NotSupported("this kernel has no sock:inet_sock_set_state tracepoint")
        self.leftovers_removed = remove_leftovers(mount)
        self.path = os.path.join(mount, "instances", f"{INSTANCE_PREFIX}{os.getpid()}")
        self._pipes: list[int] = []
        self._mount = mount
        self._tgids: dict[int, int] = {}  # thread id -> process id, as learnt
        self._saved_tables: dict[str, dict[int, str]] = {}  # see _saved
        self._keep_s = keep_s
        self._syn_sent: dict[int, int] = {}  # skaddr -> tgid
        self._by_local_port: dict[int, list[Connect]] = {}
        self._learnt: collections.deque[Connect] = collections.deque()  # in the order learnt
        self.overruns = 0
        try:
            os.mkdir(self.path)
            atexit.register(self.close)
            self._write("buffer_size_kb", str(_BUFFER_KB_PER_CPU))
            # Keeps each thread's process in saved_tgids, for threads gone by the read.
            self._write("options/record-tgid", "1")
            with open(os.path.join(self.path, _EVENT, "format")) as f:
                self._layout = event_layout(f.read())
            with open(os.path.join(self.path, _EVENT, "id")) as f:
                self._event_id = int(f.read())
            self._page_bytes = _subbuffer_bytes(self.path)
            self._write(f"{_EVENT}/filter", _FILTER)
            self._write(f"{_EVENT}/enable", "1")
            per_cpu = os.path.join(self.path, "per_cpu")
            for cpu in sorted(os.listdir(per_cpu)):
                self._pipes.append(os.open(os.path.join(per_cpu, cpu, "trace_pipe_raw"),
                                           os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        except BaseException as err:
            self.close()  # a failed start (Ctrl-C and SIGTERM too) leaves no instance
            if isinstance(err, ValueError):
                raise NotSupported(f"tracing connects: {err}") from err
            if not isinstance(err, OSError):
                raise
            if err.errno in (errno.EACCES, errno.EPERM):
                raise AccessDenied(msg=f"tracing connects: {err.strerror}") from err
            raise NotSupported(f"tracing connects: {err.strerror} ({err.filename})") from err

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def close(self) -> None:
        """Stop tracing and remove the instance."""
        for pipe in self._pipes:
            os.close(pipe)
        self._pipes = []
        if self.path:
            remove_instance(self.path)
            self.path = ""
            atexit.unregister(self.close)

    def __enter__(self) -> "ConnectTracer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _events(self) -> list[tuple]:
        """Every event recorded since the last call, in time order across CPUs."""
        events = []
        for pipe in self._pipes:
            while True:
                try:
                    page = os.read(pipe, self._page_bytes)
                except BlockingIOError:
                    break
                if not page:
                    break
                events += _fast.trace_page_events(page, self._layout, self._event_id)
        events.sort(key=lambda event: event[0])
        return events

    def _saved(self, name: str) -> dict[int, str]:
        """tracefs's saved_tgids or saved_cmdlines ("pid value" lines: what the
        kernel kept of each task at its events), read once per read()."""
        table = self._saved_tables.get(name)
        if table is None:
            table = {}
            with open(os.path.join(self._mount, name)) as f:
                for line in f:
                    pid, _, value = line.rstrip("\n").partition(" ")
                    if pid.isdigit():
                        table[int(pid)] = value
            self._saved_tables[name] = table
        return table

    def _tgid(self, tid: int) -> int:
        """The process of a thread (the event names the thread)."""
        tgid = self._tgids.get(tid)
        if tgid is not None:
            return tgid
        tgid = _platform.thread_group(tid)
        if tgid is None:
            # Gone already: the kernel kept it at the event (record-tgid).
            group = self._saved("saved_tgids").get(tid, "")
            tgid = int(group) if group.isdigit() else tid
        if len(self._tgids) > 65536:
            self._tgids.clear()
        self._tgids[tid] = tgid
        return tgid

    def name(self, tgid: int) -> Optional[str]:
        """The name (comm) the kernel kept of a process that connected, for
        one gone before its name could be read; None if it kept none."""
        comm = self._saved("saved_cmdlines").get(tgid)
        return None if comm in (None, "", "<...>") else comm

    def read(self) -> int:
        """Take the events since the last call; the number of connections learnt."""
        if not self._pipes:
            return 0
        self._saved_tables.clear()
        now = time.monotonic()
        learnt = 0
        syn_sent = self._syn_sent
        for _stamp, tid, skaddr, old, new, sport, dport, family, saddr, daddr, saddr_v6, \
                daddr_v6 in self._events():
            if old == _TCP_CLOSE:
                syn_sent[skaddr] = tid
                continue
            tid = syn_sent.pop(skaddr, None)
            if tid is None or new == _TCP_CLOSE:
                continue  # traced before we started, or the connect failed
            if family == _AF_INET:
                local = saddr.to_bytes(4, "little") + bytes(12)
                remote = daddr.to_bytes(4, "little") + bytes(12)
            else:
                local, remote = saddr_v6, daddr_v6
            connect = Connect(self._tgid(tid), family, sport, dport, local, remote, now)
            self._by_local_port.setdefault(sport, []).append(connect)
            self._learnt.append(connect)
            learnt += 1
        self.overruns = self._overruns()
        self._expire(now)
        return learnt

    def _overruns(self) -> int:
        total = 0
        per_cpu = os.path.join(self.path, "per_cpu")
        for cpu in os.listdir(per_cpu):
            with open(os.path.join(per_cpu, cpu, "stats")) as f:
                for line in f:
                    if line.startswith("overrun:"):
                        total += int(line.split()[1])
        return total

    def _expire(self, now: float) -> None:
        """Forget connections learnt more than keep_s ago (oldest first, so the
        cost follows what expires, not what is kept)."""
        horizon = now - self._keep_s
        learnt = self._learnt
        while learnt and learnt[0].seen < horizon:
            connect = learnt.popleft()
            connects = self._by_local_port.get(connect.local_port)
            if connects and connect in connects:
                connects.remove(connect)
                if not connects:
                    del self._by_local_port[connect.local_port]
        if len(self._syn_sent) > 65536:  # connects that never left SYN_SENT while traced
            self._syn_sent.clear()

    def owner(self, family: Optional[int], local_port: int, local_address: Optional[bytes],
              remote_port: Optional[int] = None,
              remote_address: Optional[bytes] = None) -> Optional[int]:
        """The tgid that opened the connection with these endpoints, or None.

        Addresses are 16 bytes as sock_diag gives them; None, and family None, match
        any (a dump's record names no family nor peer).  None too when two
        processes opened connections that the endpoints given cannot tell
        apart: no byte goes to a process by a guess.
        """
        found = None
        for c in self._by_local_port.get(local_port, ()):
            if ((family is not None and c.family != family)
                    or (local_address is not None and c.local_address != local_address)
                    or (remote_port is not None and c.remote_port != remote_port)
                    or (remote_address is not None and c.remote_address != remote_address)):
                continue
            if found is not None and found != c.tgid:
                return None
            found = c.tgid
        return found

    def forget(self, family: int, local_port: int, remote_port: int) -> None:
        """Drop what is known of a connection that ended."""
        connects = self._by_local_port.get(local_port)
        if connects:
            connects[:] = [c for c in connects if c.family != family or c.remote_port != remote_port]
            if not connects:
                del self._by_local_port[local_port]
