"""Linux platform module: thin wrappers over _fast."""

from __future__ import annotations

import os
from typing import Optional

from . import _fast
from ._common import AccessDenied, NoSuchProcess, NotSupported

send_buffer = _fast.send_buffer
tcp_info = _fast.tcp_info

_SYSCTL_NOTSENT_LOWAT = "/proc/sys/net/ipv4/tcp_notsent_lowat"
_LOWAT_OFF = 0xFFFFFFFF


def _system_notsent_lowat() -> int:
    try:
        with open(_SYSCTL_NOTSENT_LOWAT) as f:
            return int(f.read())
    except OSError as err:
        raise NotSupported(f"cannot read {_SYSCTL_NOTSENT_LOWAT}: {err.strerror}") from err


def get_notsent_lowat(sock) -> Optional[int]:
    # Per socket, 0 means "use net.ipv4.tcp_notsent_lowat" (of the caller's namespace).
    value = _fast.notsent_lowat(sock) or _system_notsent_lowat()
    return None if value >= _LOWAT_OFF else value


def set_notsent_lowat(sock, nbytes: Optional[int]) -> None:
    # None clears the socket's own limit; 0xFFFFFFFF would be "off" even if
    # the sysctl sets a system-wide limit, so None means "system default".
    _fast.set_notsent_lowat(sock, 0 if nbytes is None else nbytes)


# --- fd headroom (top/watch) ---------------------------------------------------


def fd_headroom(pid: int) -> tuple[int, Optional[int]]:
    """(open fds of pid, its RLIMIT_NOFILE soft limit or None when unlimited)."""
    try:
        open_fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/limits") as f:
            limits = f.read()
    except FileNotFoundError as err:
        raise NoSuchProcess(pid) from err
    except PermissionError as err:
        raise AccessDenied(pid) from err
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files"):].split()[0]
            return open_fds, None if soft == "unlimited" else int(soft)
    raise NotSupported(f"/proc/{pid}/limits has no 'Max open files' line")
