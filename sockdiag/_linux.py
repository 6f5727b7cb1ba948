"""Linux platform module: thin wrappers over _fast."""

from __future__ import annotations

import errno
from typing import Optional

from . import _fast
from ._common import AccessDenied, InterfaceCounters, NotSupported, SockdiagError

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


# --- interface counters (issue 4) ---------------------------------------------


def interfaces() -> dict[str, InterfaceCounters]:
    # One rtnetlink dump in the calling thread's network namespace.
    try:
        return _fast.rtnl_interfaces()
    except PermissionError as err:
        raise AccessDenied(msg=f"reading interface counters: {err.strerror}") from err
    except OSError as err:
        if err.errno in (errno.ENOSYS, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            raise NotSupported(f"no rtnetlink here: {err.strerror}") from err
        raise SockdiagError(f"reading interface counters: {err.strerror}") from err
    except ValueError as err:
        raise SockdiagError(f"malformed rtnetlink reply: {err}") from err
