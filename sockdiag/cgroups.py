"""cgroups (v2) as a selector: the TCP sockets of a systemd unit, a container or a pod (Linux).

A socket keeps the cgroup of the task that created it, and the kernel can
filter a sock_diag dump by it (``INET_DIAG_BC_CGROUP_COND``, which
``ss --cgroup`` uses): the machine's other sockets cost a filter run each,
never a message.  A cgroup's id is the inode of its directory under the
cgroup2 mount, which is found in /proc/mounts (``/sys/fs/cgroup`` on a
unified machine, ``/sys/fs/cgroup/unified`` on a hybrid one).  A cgroup
selects itself and its descendants: a pod's sockets are in its containers'
cgroups, a slice's in its services'.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterable, Optional

from . import _features
from ._common import SOCKET_KINDS, FrozenStruct, SocketInfo, kind_mask
from ._exceptions import NotSupported, SockdiagError



class Cgroup(FrozenStruct):
    """A cgroup v2 directory.

    ``path``: its directory; ``relative``: the path under the cgroup2 mount, as
    ``/proc/<pid>/cgroup`` shows it (``/system.slice/nginx.service``); ``id``:
    the cgroup id (the directory's inode, what ``ss --cgroup`` prints);
    ``name``: a readable name (``name_of``).
    """

    path: str
    relative: str
    id: int
    name: str


def cgroup2_mount(mounts: Optional[str] = None) -> str:
    """Where cgroup v2 is mounted (mounts: a /proc/mounts file); NotSupported
    on a cgroup v1-only machine."""
    from ._platform import MOUNTS, mount_points

    mounts = mounts or MOUNTS
    try:
        points = mount_points("cgroup2", mounts)
    except OSError as err:
        raise NotSupported(f"{mounts}: {err.strerror}") from err
    if points:
        return points[0]
    raise NotSupported("cgroup v2 is not mounted (a cgroup v1-only machine): "
                       "cgroups can select sockets only by their v2 id")


# Readable names: a container scope, a Kubernetes pod, a systemd unit.
_CONTAINER_SCOPE = re.compile(r"^(docker|cri-containerd|crio|libpod)-([0-9a-f]{12,64})\.scope$")
_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(\.slice)?$")
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
_UNIT = re.compile(r"\.(service|scope|slice)$")
_RUNTIMES = {"docker": "docker", "cri-containerd": "containerd", "crio": "cri-o", "libpod": "podman"}


def name_of(relative: str) -> str:
    """A readable name for a cgroup path under the mount.

    ``…/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`` →
    ``pod <uid> container <id:12>`` (``/kubepods/burstable/pod<uid>/<id>`` too); ``…/docker-<id>.scope`` → ``docker <id:12>``;
    ``/system.slice/nginx.service`` → ``nginx.service``; otherwise the path.
    """
    parts = [part for part in relative.split("/") if part]
    pod = container = None
    for part in parts:
        found = _POD.search(part)
        if found:
            pod = found.group(1).replace("_", "-")
        scope = _CONTAINER_SCOPE.match(part)
        if scope:
            container = (_RUNTIMES[scope.group(1)], scope.group(2)[:12])
        elif pod is not None and _CONTAINER_ID.match(part):  # cgroupfs driver: the bare id
            container = ("container", part[:12])
    if pod is not None:
        return f"pod {pod}" + (f" container {container[1]}" if container else "")
    if container is not None:
        return f"{container[0]} {container[1]}"
    if parts and _UNIT.search(parts[-1]):
        return parts[-1]
    return "/" + "/".join(parts)


def open_cgroup(path: str, mount: Optional[str] = None) -> Cgroup:
    """The cgroup at path: a directory under the cgroup2 mount, or a path
    relative to the mount as /proc/<pid>/cgroup shows it.  SockdiagError when
    there is no such cgroup, NotSupported without cgroup v2, TypeError for a
    path not a str, ValueError for an empty one."""
    if not isinstance(path, str):
        raise TypeError(f"path: {path!r} is not a str (a cgroup's path)")
    if not path.strip():
        raise ValueError('path: an empty path names no cgroup ("/" is the root cgroup: the whole machine)')
    mount = os.path.realpath(mount or cgroup2_mount())
    candidates = [path] if os.path.isabs(path) else []
    candidates.append(os.path.join(mount, path.lstrip("/")))
    for candidate in candidates:
        real = os.path.realpath(candidate)
        if (real == mount or real.startswith(mount + os.sep)) and os.path.isfile(
                os.path.join(real, "cgroup.procs")):
            relative = "/" + os.path.relpath(real, mount) if real != mount else "/"
            return Cgroup(real, relative, os.stat(real).st_ino, name_of(relative))
    raise SockdiagError(f"no cgroup {path!r} under the cgroup2 mount {mount}")


def cgroup_removed(cgroup: Cgroup) -> bool:
    """Whether the cgroup's directory is gone (or is another cgroup's, made again under its name)."""
    try:
        return os.stat(cgroup.path).st_ino != cgroup.id
    except FileNotFoundError:
        return True


def cgroup_tree(cgroup: Cgroup) -> list[tuple[str, int]]:
    """(directory, id) of the cgroup and of every cgroup below it (one that
    disappears meanwhile is left out)."""
    found = []
    for directory, subdirectories, _files in os.walk(cgroup.path):
        try:
            found.append((directory, os.stat(directory).st_ino))
        except FileNotFoundError:
            subdirectories.clear()
    return found


def cgroup_pids(cgroup: Cgroup) -> list[int]:
    """The processes of the cgroup and of the cgroups below it, now."""
    pids = []
    for directory, _id in cgroup_tree(cgroup):
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                pids.extend(int(line) for line in f if line.strip())
        except FileNotFoundError:
            continue  # removed meanwhile
    return pids


def cgroup_sockets(cgroup: Cgroup, states: Optional[Iterable[str]] = None,
                   notice: Optional[Callable[[str], None]] = None,
                   kinds: Iterable[str] = ("tcp",)) -> list[SocketInfo]:
    """The TCP sockets created in the cgroup or below it, in the network
    namespace of each of its processes (the caller's when it has none),
    and, when kinds asks for them, the UDP and UNIX sockets its processes
    hold.  fd is None: a socket is the cgroup's, not one process's.

    A full pass filters a dump in the kernel by cgroup id; a refresh asks by
    name for the sockets found then, while the cgroup's processes hold no
    other socket (docs/cgroups.md).  On a kernel without the cgroup filter,
    notice() is told once and the sockets held by the cgroup's processes are
    read instead.  A cgroup removed meanwhile has no sockets.
    """
    from ._platform import state_mask

    state_mask(states)  # an unknown state or kind is refused before any kernel pass
    wanted = kind_mask(kinds)
    kinds = [kind for bit, kind in enumerate(SOCKET_KINDS) if wanted >> bit & 1]
    pids = cgroup_pids(cgroup)
    found = _cgroup_tcp_sockets(cgroup, pids, states, notice) if "tcp" in kinds else []
    others = [kind for kind in kinds if kind != "tcp"]
    if others:
        found += [s.replace(fd=None) for s in _held_by(pids, states, others)]
    return found


def _cgroup_tcp_sockets(cgroup: Cgroup, pids: list[int], states,
                        notice: Optional[Callable[[str], None]]) -> list[SocketInfo]:
    from ._platform import cgroup_namespace_sockets, filter_bytecode, network_namespace

    if not _features.available("inet_diag_cgroup_filter"):
        _features.notice_absent("inet_diag_cgroup_filter", "watch", notice)
        return _held_by(pids, states)
    namespaces: dict[Optional[int], list[int]] = {}
    for pid in pids:
        namespaces.setdefault(network_namespace(pid), []).append(pid)
    namespaces.pop(None, None)  # exited meanwhile
    if not namespaces:
        namespaces[network_namespace(os.getpid())] = []
    ids = [cgroup_id for _directory, cgroup_id in cgroup_tree(cgroup)]
    if not ids:
        return []
    bytecode = filter_bytecode(ids)
    found: list[SocketInfo] = []
    for namespace, members in namespaces.items():
        found += cgroup_namespace_sockets(members, cgroup.id, namespace, bytecode, states)
    return found


def _held_by(pids: list[int], states, kinds=("tcp",)) -> list[SocketInfo]:
    from ._platform import sockets_of_processes

    seen, found = set(), []
    for sockets in sockets_of_processes(pids, states, kinds).values():
        if isinstance(sockets, list):
            found += [s for s in sockets if s.inode not in seen and not seen.add(s.inode)]
    return found
