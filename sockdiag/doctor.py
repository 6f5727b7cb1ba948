"""What sockdiag can see on this machine, and why not (Linux): `sockdiag doctor`.

The kernel and each feature sockdiag uses (``_features``), the privileges
that decide what can be read (root, capabilities, tracefs, cgroups, yama),
and, per command, what it will and will not show here.  Needs no privilege:
what it cannot read it reports as such.
"""

from __future__ import annotations

import os
from typing import Optional

from . import _features, _platform
from ._common import FrozenStruct
from ._exceptions import NotSupported
from ._platform import CAPABILITIES, MOUNTS, own_capabilities, parse_mounts

class Privileges(FrozenStruct):
    """What this process may read.

    ``capabilities``: {name: in the effective set}; ``tracefs``: where it is
    mounted, None when it is not; ``tracefs_access``: "read-write",
    "read-only", "none", or "not mounted"; ``cgroup_version``: "v2", "hybrid"
    (v1 controllers beside a v2 mount), "v1" or None; ``cgroup2_mount``;
    ``yama_ptrace_scope``: 0-3, None without Yama.
    """

    root: bool
    capabilities: dict[str, bool]
    tracefs: Optional[str]
    tracefs_access: str
    cgroup_version: Optional[str]
    cgroup2_mount: Optional[str]
    yama_ptrace_scope: Optional[int]


class Diagnosis(FrozenStruct):
    """The doctor's report: ``kernel`` (uname -r), ``assumed_kernel`` (the
    SOCKDIAG_ASSUME_KERNEL release, or None), the features, the privileges,
    and per command the lines of what it shows here (``commands``)."""

    kernel: str
    assumed_kernel: Optional[str]
    features: tuple[_features.KernelFeature, ...]
    privileges: Privileges
    commands: dict[str, tuple[str, ...]]


def cgroup_layout(mounts_text: str) -> tuple[Optional[str], Optional[str]]:
    """(version, cgroup2 mount point) from a /proc/mounts text."""
    mounts = parse_mounts(mounts_text)
    v2 = next((point for kind, point in mounts if kind == "cgroup2"), None)
    v1 = any(kind == "cgroup" for kind, _point in mounts)
    if v2 and v1:
        return "hybrid", v2
    return ("v2", v2) if v2 else ("v1", None) if v1 else (None, None)


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def privileges() -> Privileges:
    """This process's privileges and the machine's tracefs, cgroups and Yama."""
    try:
        mask = own_capabilities()
    except OSError:
        mask = 0
    tracefs = _platform.tracefs_mount()
    if tracefs is None:
        access = "not mounted"
    elif os.access(tracefs, os.W_OK | os.X_OK):
        access = "read-write"
    elif os.access(tracefs, os.R_OK | os.X_OK):
        access = "read-only"
    else:
        access = "none"
    version, mount = cgroup_layout(_read(MOUNTS) or "")
    try:
        scope = _platform.sysctl("kernel.yama.ptrace_scope")
    except NotSupported:  # no Yama
        scope = ""
    return Privileges(os.geteuid() == 0, {name: bool(mask >> bit & 1) for name, bit in CAPABILITIES.items()},
                      tracefs, access, version, mount, int(scope) if scope.isdigit() else None)


def command_lines(found: Privileges, features: list[_features.KernelFeature]) -> dict[str, tuple[str, ...]]:
    """Per command, one line for each thing it will or will not show here."""
    capable = found.capabilities
    others = found.root or capable["CAP_SYS_PTRACE"]
    lines: dict[str, list[str]] = {
        "watch": [
            "your own processes' sockets: yes",
            "other users' processes: " + ("yes" if others else "no (needs root or CAP_SYS_PTRACE)"),
            "processes in other network namespaces: "
            + ("yes" if capable["CAP_SYS_ADMIN"] else "no (needs CAP_SYS_ADMIN)"),
            "--cgroup: " + ("yes (cgroup v2 at " + found.cgroup2_mount + ")" if found.cgroup2_mount
                            else "no (needs a cgroup v2 mount; a cgroup v1-only machine has none)"),
        ],
        "top": [
            "per-process bytes of " + ("every process" if others else "your own processes "
                                       "(others' go to the unattributed row: needs root or CAP_SYS_PTRACE)"),
            "sockets closed between two samples: "
            + ("counted" if _features.available("sock_destroy_notifications")
               else "missed (no destroy notifications here)"),
            "short client connections' process: "
            + ("unattributed (the connect tracepoint needs root)" if not found.root
               else "traced" if _features.status("inet_sock_set_state") is not False
               else "unattributed"),
        ],
        "export": ["as watch, per process and per cgroup"],
        "ifstat": ["every interface of this network namespace: yes"],
        "bench": ["lowat: " + ("yes" if found.root else "no (needs root: namespaces, qdiscs)")],
    }
    for feature in features:
        if feature.available is False:
            for command, without in feature.without.items():
                if command in lines:
                    lines[command].append(f"without {feature.name} (Linux {feature.since}): {without}")
    return {command: tuple(found_lines) for command, found_lines in lines.items()}


def diagnose() -> Diagnosis:
    """The whole report.  Needs no privilege."""
    assumed = _features.assumed_kernel()
    features = _features.kernel_features()
    found = privileges()
    return Diagnosis(_features.running_kernel(), None if assumed is None else "%d.%d" % assumed,
                     tuple(features), found, command_lines(found, features))
