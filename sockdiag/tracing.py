"""Who opened a connection, even one that lives shorter than a sample (Linux, root).

The kernel's ``sock:inet_sock_set_state`` tracepoint fires in the connecting
task when a socket goes CLOSE -> SYN_SENT, before the first byte, so the
event's tgid is the process that called connect().  Its source port is still
0 then (the kernel picks it right after), so the socket's address in the
kernel (``skaddr``) ties that event to the socket's next one (SYN_SENT ->
ESTABLISHED or CLOSE), which carries the ports.  The result is a map from a
connection's endpoints to the connecting process, which ``TrafficAccountant``
consults for sockets it never saw in any process's fds.

The events are read as text from a tracefs instance of sockdiag's own
(``instances/sockdiag-<pid>``), so no other user of tracing is disturbed; the
``fields`` output option prints ``skaddr``.  The instance is removed by
``close()`` (also at interpreter exit), and instances of sockdiag runs that
were killed are removed when the next one starts.  tracefs is mounted at
/sys/kernel/tracing when it is not mounted anywhere.  Why tracefs rather than
eBPF: docs/top.md.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import time
from dataclasses import dataclass
from typing import Optional

from ._common import AccessDenied, NotSupported

INSTANCE_PREFIX = "sockdiag-"
_EVENT = "events/sock/inet_sock_set_state"
_TCP_SYN_SENT, _TCP_CLOSE = 2, 7
# CLOSE -> SYN_SENT (the connecting task) and every way out of SYN_SENT.
_FILTER = f"protocol == 6 && ((oldstate == {_TCP_CLOSE} && newstate == {_TCP_SYN_SENT}) " \
          f"|| oldstate == {_TCP_SYN_SENT})"
_BUFFER_KB_PER_CPU = 4096
_READ_BYTES = 1 << 20
_DEFAULT_MOUNT = "/sys/kernel/tracing"

# One event as the `fields` option prints it, with record-tgid:
#   python3-28626 (  28570) [001] ..... 1059.886: inet_sock_set_state: skaddr=0xffff… (…)
#   oldstate=0x7 (7) newstate=0x2 (2) sport=0x0 (0) dport=0xa0a9 (41129) family=0x2 (2)
#   protocol=0x6 (6) saddr=0x100007f (16777343) daddr=0x100007f (16777343) …
_LINE = re.compile(
    rb"-\d+\s+\(\s*(\d+)\) \[\d+\][^:]*: inet_sock_set_state: skaddr=0x([0-9a-f]+) \S+ "
    rb"oldstate=\S+ \((\d+)\) newstate=\S+ \((\d+)\) sport=\S+ \((\d+)\) dport=\S+ \((\d+)\) "
    rb"family=\S+ \((\d+)\) protocol=\S+ \(\d+\) saddr=0x([0-9a-f]+) \S+ daddr=0x([0-9a-f]+)")


@dataclass(frozen=True, slots=True)
class Connect:
    """A connection opened by a traced process: its endpoints as far as known."""

    tgid: int
    family: int  # AF_INET or AF_INET6
    local_port: int
    remote_port: int
    # IPv4 addresses in network order as the kernel stores them; None for
    # IPv6 (the fields output cannot print a 16-byte array).
    local_v4: Optional[int]
    remote_v4: Optional[int]
    seen: float  # time.monotonic() when its ports were known


def tracefs_mount() -> Optional[str]:
    """Where tracefs is mounted (from /proc/mounts), or None."""
    with open("/proc/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "tracefs":
                return fields[1].replace("\\040", " ")
    return None


def _mount_tracefs() -> str:
    mount = tracefs_mount()
    if mount is not None:
        return mount
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"nodev", _DEFAULT_MOUNT.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount tracefs on {_DEFAULT_MOUNT}: {os.strerror(err)}")
    return _DEFAULT_MOUNT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if owner.isdigit() and not _alive(int(owner)):
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
        self._pipe = -1
        self._keep_s = keep_s
        self._syn_sent: dict[int, int] = {}  # skaddr -> tgid
        self._by_local_port: dict[int, list[Connect]] = {}
        self._partial = b""
        self.overruns = 0
        try:
            os.mkdir(self.path)
            atexit.register(self.close)
            self._write("buffer_size_kb", str(_BUFFER_KB_PER_CPU))
            self._write("options/record-tgid", "1")
            self._write("options/fields", "1")
            self._write(f"{_EVENT}/filter", _FILTER)
            self._write(f"{_EVENT}/enable", "1")
            self._pipe = os.open(os.path.join(self.path, "trace_pipe"),
                                 os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            self.close()
            if err.errno in (errno.EACCES, errno.EPERM):
                raise AccessDenied(msg=f"tracing connects: {err.strerror}") from err
            raise NotSupported(f"tracing connects: {err.strerror} ({err.filename})") from err

    def _write(self, name: str, value: str) -> None:
        with open(os.path.join(self.path, name), "w") as f:
            f.write(value)

    def close(self) -> None:
        """Stop tracing and remove the instance."""
        if self._pipe >= 0:
            os.close(self._pipe)
            self._pipe = -1
        if self.path:
            remove_instance(self.path)
            self.path = ""
            atexit.unregister(self.close)

    def __enter__(self) -> "ConnectTracer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _read_text(self) -> bytes:
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self._pipe, _READ_BYTES)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        text = b"".join(chunks)
        end = text.rfind(b"\n") + 1
        self._partial = text[end:]
        return text[:end]

    def read(self) -> int:
        """Take the events since the last call; the number of connections learnt."""
        if self._pipe < 0:
            return 0
        now = time.monotonic()
        learnt = 0
        syn_sent = self._syn_sent
        for match in _LINE.finditer(self._read_text()):
            tgid, skaddr, old, new, sport, dport, family, saddr, daddr = match.groups()
            skaddr = int(skaddr, 16)
            if int(old) == _TCP_CLOSE:
                syn_sent[skaddr] = int(tgid)
                continue
            owner = syn_sent.pop(skaddr, None)
            if owner is None or int(new) == _TCP_CLOSE:
                continue  # traced before we started, or the connect failed
            v4 = int(family) == 2
            connect = Connect(owner, int(family), int(sport), int(dport),
                              int(saddr, 16) if v4 else None, int(daddr, 16) if v4 else None, now)
            self._by_local_port.setdefault(connect.local_port, []).append(connect)
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
        horizon = now - self._keep_s
        for port, connects in list(self._by_local_port.items()):
            kept = [c for c in connects if c.seen >= horizon]
            if kept:
                self._by_local_port[port] = kept
            else:
                del self._by_local_port[port]
        if len(self._syn_sent) > 65536:  # connects that never left SYN_SENT while traced
            self._syn_sent.clear()

    def owner(self, family: Optional[int], local_port: int, local_v4: Optional[int] = None,
              remote_port: Optional[int] = None, remote_v4: Optional[int] = None) -> Optional[int]:
        """The tgid that opened the connection with these endpoints, or None.

        family None: either (a dump's record names no family).

        None too when two processes opened connections that the endpoints
        given cannot tell apart: no byte goes to a process by a guess.
        """
        found = None
        for c in self._by_local_port.get(local_port, ()):
            if family is not None and c.family != family:
                continue
            if remote_port is not None and c.remote_port != remote_port:
                continue
            if (local_v4 is not None and c.local_v4 is not None and c.local_v4 != local_v4) or \
                    (remote_v4 is not None and c.remote_v4 is not None and c.remote_v4 != remote_v4):
                continue
            if found is not None and found != c.tgid:
                return None
            found = c.tgid
        return found

    def forget(self, family: int, local_port: int, remote_port: int) -> None:
        """Drop what is known of a connection that ended."""
        connects = self._by_local_port.get(local_port)
        if connects:
            kept = [c for c in connects if c.family != family or c.remote_port != remote_port]
            if kept:
                self._by_local_port[local_port] = kept
            else:
                del self._by_local_port[local_port]
