"""Linux part of the exporter: process names from /proc, for --process-name."""

from __future__ import annotations

import os

from ._common import AccessDenied, NoSuchProcess

# The kernel keeps at most 15 characters of a process's name (TASK_COMM_LEN 16).
_COMM_MAX_CHARS = 15


def _read_text(path: str, pid: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError) as err:
        raise NoSuchProcess(pid) from err
    except PermissionError as err:
        raise AccessDenied(pid) from err


def process_name(pid: int) -> str:
    """The process's name as ps and pgrep show it (/proc/PID/comm).

    The kernel cuts names at 15 characters; then the name is the basename of
    argv[0] when it starts with the cut name (psutil's rule), so long names match.
    """
    comm = _read_text(f"/proc/{pid}/comm", pid).rstrip("\n")
    if len(comm) == _COMM_MAX_CHARS:
        try:
            argv0 = _read_text(f"/proc/{pid}/cmdline", pid).split("\0", 1)[0]
        except AccessDenied:
            return comm
        executable = os.path.basename(argv0)
        if executable.startswith(comm):
            return executable
    return comm


def pids_named(names: frozenset[str]) -> dict[int, str]:
    """{pid: name} of every process whose name (process_name) is in names."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            name = process_name(pid)
        except (NoSuchProcess, AccessDenied):
            continue  # exited meanwhile, or hidden from us (hidepid)
        if name in names:
            found[pid] = name
    return found
