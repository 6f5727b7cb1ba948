"""The kernel features sockdiag uses, each probed once by trying it (Linux).

Every feature has a name, the release that brought it (``since``, from the
kernel's history) and what sockdiag does without it, per command.  Whether
a kernel has a feature is learnt by trying it the first time it is asked
(a getsockopt, a filtered dump, a tracefs directory), never from the
version number: distributions backport.

``SOCKDIAG_ASSUME_KERNEL=X.Y`` makes every feature newer than X.Y absent
(and tcp_info as long as that kernel's), so that one machine shows what an
older fleet will get.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Optional

from ._common import FrozenStruct
from ._exceptions import SockdiagError
from ._linux import ASSUME_KERNEL


class KernelFeature(FrozenStruct):
    """A kernel feature sockdiag uses.

    ``since``: the Linux release that brought it ("4.19"); ``available``:
    whether this kernel has it (``None`` when it cannot be tried with these
    privileges); ``what``: what it gives; ``without``: {command: what that
    command does without it}.
    """

    name: str
    since: str
    available: Optional[bool]
    what: str
    without: dict[str, str]


# How struct tcp_info grew: (release, the first field it added), oldest
# first.  A kernel older than a step returns the struct up to that field.
TCP_INFO_GROWTH = (
    ((4, 1), "bytes_acked"),
    ((4, 2), "segs_out"),
    ((4, 6), "notsent_bytes"),
    ((4, 9), "delivery_rate_bps"),
    ((4, 10), "busy_time_us"),
    ((4, 18), "delivered"),
    ((4, 19), "bytes_sent"),
    ((5, 4), "rcv_ooopack"),
    ((6, 2), "rcv_wnd"),
    ((6, 7), "total_rto"),
    ((6, 18), "received_ce"),
)


# The oldest kernel sockdiag can pretend to be: every feature older than it
# is left to its probe.
OLDEST_ASSUMABLE = (4, 14)


def parse_release(text: str) -> tuple[int, int]:
    """(major, minor) of "X.Y", 4.14 or newer; SockdiagError (one line) otherwise."""
    found = re.fullmatch(r"([1-9][0-9]?)\.([0-9]{1,3})", text.strip())
    if not found or (int(found.group(1)), int(found.group(2))) < OLDEST_ASSUMABLE:
        raise SockdiagError(f"{ASSUME_KERNEL}={text!r}: expected a kernel release X.Y "
                            f"from {_release(OLDEST_ASSUMABLE)} on, such as 4.18")
    return int(found.group(1)), int(found.group(2))


def assumed_kernel() -> Optional[tuple[int, int]]:
    """The release SOCKDIAG_ASSUME_KERNEL names, None when unset."""
    text = os.environ.get(ASSUME_KERNEL)
    return None if text is None or text == "" else parse_release(text)


def running_kernel() -> str:
    """The running kernel's release (uname -r)."""
    return os.uname().release


# --- probes: each tries the feature once ----------------------------------------


def _tcp_info_has(field: str) -> Callable[[], Optional[bool]]:
    def probe() -> bool:
        import socket

        from . import _fast

        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return getattr(_fast.tcp_info(sock), field) is not None
    return probe


def _so_meminfo() -> bool:
    import socket

    so_meminfo = 55  # <asm-generic/socket.h>
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.getsockopt(socket.SOL_SOCKET, so_meminfo, 64)
        except OSError:
            return False
    return True


def _destroy_notifications() -> Optional[bool]:
    from . import _fast

    try:
        _fast.DestroyListener().close()
    except PermissionError:
        return None  # refused by a security policy: whether the kernel has them is unknown
    except OSError:
        return False
    return True


def _tracepoint() -> Optional[bool]:
    from ._linux import tracepoint_exists

    return tracepoint_exists()


def _cgroup_filter() -> bool:
    import errno

    from . import _fast
    from ._linux import filter_bytecode

    try:
        _fast.namespace_sockets_linux(1 << 10, filter_bytecode([1]))  # LISTEN sockets of cgroup 1
    except OSError as err:
        if err.errno == errno.EINVAL:  # an op this kernel does not know
            return False
        raise
    return True


def _proc_fd_size() -> bool:
    fd_dir = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return os.fstat(fd_dir).st_size > 0  # it counts itself at least
    finally:
        os.close(fd_dir)


class _Spec(FrozenStruct):
    name: str
    since: tuple[int, int]
    what: str
    without: dict[str, str]
    probe: Callable[[], Optional[bool]]
    # The commands' own notes say what its absence costs (top's coverage notes).
    noted_by_commands: bool = False


_SPECS = (  # oldest first
    _Spec("sock_destroy_notifications", (4, 2),
          "sock_diag destroy notifications: the final counters of closing sockets",
          {"top": "connections opened and closed between two samples are missed (a note says so)"},
          _destroy_notifications, noted_by_commands=True),
    _Spec("tcp_info_notsent_bytes", (4, 6),
          "tcp_info's unsent bytes: the unacked/unsent split of other processes' sockets",
          {"watch": "no unacked/unsent split for other processes' sockets (queued only)",
           "export": "no unsent/unacked series"},
          _tcp_info_has("notsent_bytes")),
    _Spec("tcp_info_delivery_rate", (4, 9),
          "tcp_info's delivery rate: how long a byte written now waits",
          {"watch": "queue delay only from the bytes acknowledged between two looks (none on the first)",
           "export": "queue delay only from the bytes acknowledged between two scrapes"},
          _tcp_info_has("delivery_rate_bps")),
    _Spec("so_meminfo", (4, 12),
          "SO_MEMINFO: the kernel's own send-buffer accounting of a socket you hold",
          {"send_buffer": "refuses TCP sockets (UnsuitableSocket): no free bytes without it",
           "record": "as send_buffer"},
          _so_meminfo),
    _Spec("inet_sock_set_state", (4, 16),
          "the sock:inet_sock_set_state tracepoint: who made a short client connection",
          {"top": "short client connections go to the unattributed row (a note says so)"},
          _tracepoint, noted_by_commands=True),
    _Spec("tcp_info_bytes_sent", (4, 19),
          "tcp_info's bytes_sent and bytes_retrans: per-process bytes sent and retransmitted",
          {"top": "sent and retrans are empty (acked and received remain)"},
          _tcp_info_has("bytes_sent")),
    _Spec("inet_diag_cgroup_filter", (5, 8),
          "inet_diag's cgroup filter (INET_DIAG_BC_CGROUP_COND): a cgroup's sockets in one filtered dump",
          {"watch": "--cgroup reads the sockets its processes hold instead (the same sockets "
                    "unless one was made in the cgroup but is held outside it)",
           "export": "--cgroup as watch"},
          _cgroup_filter),
    _Spec("proc_fd_size", (6, 2),
          "the size of /proc/PID/fd is the number of open fds",
          {"top": "fd headroom counts the fds by listing /proc/PID/fd (slower, same count)",
           "watch": "fd headroom counts the fds by listing /proc/PID/fd (slower, same count)"},
          _proc_fd_size),
)

_SPEC_BY_NAME = {spec.name: spec for spec in _SPECS}
_probed: dict[str, Optional[bool]] = {}
_noticed: set[str] = set()


def assumed_absent(name: str) -> bool:
    """True when SOCKDIAG_ASSUME_KERNEL names a release older than the feature's."""
    assumed = assumed_kernel()
    return assumed is not None and _SPEC_BY_NAME[name].since > assumed


def status(name: str) -> Optional[bool]:
    """Whether the kernel has the feature (tried once): True, False, or None
    when it cannot be tried with these privileges.  False under
    SOCKDIAG_ASSUME_KERNEL older than its release."""
    if assumed_absent(name):
        return False
    if name not in _probed:
        try:
            _probed[name] = _SPEC_BY_NAME[name].probe()
        except PermissionError:
            _probed[name] = None
    return _probed[name]


def available(name: str) -> bool:
    """True when the feature can be used (status is True)."""
    return status(name) is True


def notice_absent(name: str, command: str, notice: Optional[Callable[[str], None]]) -> None:
    """Tell notice(), once a process, what command does without the feature."""
    if notice is not None and name not in _noticed:
        _noticed.add(name)
        notice(f"sockdiag: {_absent_line(_SPEC_BY_NAME[name], command)}")


def _release(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _absent_line(spec: _Spec, command: str) -> str:
    return f"this kernel has no {spec.name} (Linux {_release(spec.since)}): {spec.without[command]}"


def kernel_features() -> list[KernelFeature]:
    """Every kernel feature sockdiag uses, each tried (once) on this kernel."""
    return [KernelFeature(spec.name, _release(spec.since), status(spec.name), spec.what,
                          dict(spec.without))
            for spec in _SPECS]


def missing_notes(command: str) -> list[str]:
    """One line per feature the kernel lacks that changes what command shows."""
    return [_absent_line(spec, command) for spec in _SPECS
            if command in spec.without and not spec.noted_by_commands and status(spec.name) is False]


def limit_to_assumed_kernel() -> None:
    """Decode tcp_info as long as the assumed kernel's (a bad value is left
    to the first feature question, which raises)."""
    try:
        assumed = assumed_kernel()
    except SockdiagError:
        return
    if assumed is None:
        return
    from . import _fast

    offsets = {name: offset for name, offset, _size in _fast.linux_tcp_info_fields()}
    for release, first_field in TCP_INFO_GROWTH:
        if release > assumed:
            _fast.limit_tcp_info_length(offsets[first_field])
            return
