"""The running OS's platform module, chosen once (psutil's ``_psplatform``).

Library and view modules take the platform's functions from here, never
from the package face ``sockdiag`` nor from ``_linux`` / ``_darwin``.  A name
a platform lacks is not defined here either (Linux: ``pids_named``,
``process_state``, ``process_stat_fields``, ``boot_time_s``, ``tcp_sampler``,
``thread_group``, ``process_cgroup``, ``process_exists``, ``all_pids``,
``network_namespace``, ``initial_network_namespace``, ``sysctl``,
``CAPABILITIES``, ``own_capabilities``, ``MOUNTS``, ``parse_mounts``,
``mount_points``, ``tracefs_mount``, ``TRACEPOINT_EVENT``, ``state_mask``,
``filter_bytecode``, ``cgroup_namespace_sockets``, ``open_cgroup``,
``cgroup_sockets``; macOS: ``userspace_networking``).
"""

from __future__ import annotations

from typing import Optional

from ._common import LINUX, MACOS
from ._exceptions import SockdiagError

if LINUX:
    from ._linux import (CAPABILITIES, MOUNTS, TRACEPOINT_EVENT, all_pids, boot_time_s,
                         cgroup_namespace_sockets, filter_bytecode, initial_network_namespace,
                         mount_points, network_namespace, own_capabilities, parse_mounts, pids_named,
                         process_cgroup, process_exists, process_stat_fields, process_state,
                         sockets_of_processes, state_mask, sysctl, tcp_sampler, thread_group,
                         tracefs_mount)
    from . import _linux as _os
elif MACOS:
    from ._darwin import sockets_of_processes, userspace_networking
    from . import _darwin as _os
else:  # pragma: no cover
    raise ImportError("sockdiag supports Linux and macOS")

send_buffer = _os.send_buffer
socket_queues = _os.socket_queues
tcp_info = _os.tcp_info
get_notsent_lowat = _os.get_notsent_lowat
set_notsent_lowat = _os.set_notsent_lowat
process_sockets = _os.process_sockets
check_access = _os.check_access
process_name = _os.process_name
fd_headroom = _os.fd_headroom
interfaces = _os.interfaces


def process_name_or_none(pid: int) -> Optional[str]:
    """pid's name (process_name), None when it cannot be read: for views that show "?"."""
    try:
        return process_name(pid)
    except (SockdiagError, OSError):
        return None


if LINUX:
    # Linux's cgroup v2 machinery (sockdiag.cgroups) takes _linux's functions
    # from here; imported at first use, so `import sockdiag` does not pay for
    # it (and the two never import each other at load).

    def open_cgroup(path: str):
        """The cgroup v2 at path (sockdiag.cgroups.open_cgroup)."""
        from .cgroups import open_cgroup

        return open_cgroup(path)

    def cgroup_sockets(cgroup, states=None, notice=None, kinds=("tcp",)):
        """The sockets of a cgroup (sockdiag.cgroups.cgroup_sockets)."""
        from .cgroups import cgroup_sockets

        return cgroup_sockets(cgroup, states, notice, kinds)
