"""Linux platform module: thin wrappers over _fast."""

from __future__ import annotations

import errno
import os
import struct
from typing import Iterable, Optional

from . import _fast
from ._common import TCP_STATES, FdHeadroom, InterfaceCounters, SocketInfo, kind_mask, parse_tcp_state
from ._exceptions import (
    AccessDenied,
    NoSuchProcess,
    NotSupported,
    SockdiagError,
    unsuitable_socket,
    wrap_oserror,
)
from ._validate import PID_MAX

# --- errors ---------------------------------------------------------------------

_NOT_HERE = (errno.ENOSYS, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ENOENT)


def _socket_exception(err: OSError) -> Exception:
    """sockdiag's exception for a failed call on a socket (Linux has no message of its own)."""
    return unsuitable_socket(err)


def _exception(err: OSError, function_name: str, subject) -> Exception:
    """sockdiag's exception for the OSError of a _fast or /proc call: the one
    errno mapping of Linux.  subject is the wrapped function's first argument."""
    if isinstance(err.filename, int):  # a call on a socket (see _fast.pyx)
        return _socket_exception(err)
    if isinstance(subject, int) and str(err.filename).startswith(f"/proc/{subject}/"):
        pid = subject
        if isinstance(err, ProcessLookupError):  # _fast's check after a pass
            return NoSuchProcess(pid, f"process {pid} exited")
        if isinstance(err, FileNotFoundError):
            return NoSuchProcess(pid)
        if isinstance(err, PermissionError):
            # A process that has just exited refuses its fds even to its own user.
            if process_state(pid) in (None, "Z", "X"):
                return NoSuchProcess(pid, f"process {pid} exited")
            if err.filename.endswith("/ns/net"):
                return AccessDenied(pid, f"pid {pid} is in another network namespace: only root "
                                         "(CAP_SYS_ADMIN) can see its sockets")
            if os.geteuid() == 0 and not has_capability("CAP_SYS_PTRACE"):
                return AccessDenied(pid, f"not allowed to inspect pid {pid}: this root lacks "
                                         "CAP_SYS_PTRACE, which reading another user's process needs")
            return AccessDenied(pid)
    what = err.filename2 or err.filename or function_name
    if isinstance(err, PermissionError):
        return AccessDenied(msg=f"{what}: {err.strerror}")
    if err.errno in _NOT_HERE:
        return NotSupported(f"{what}: {err.strerror}")
    return SockdiagError(f"{what} failed: {err.strerror}")


def wrap_exceptions(function):
    """Decorator: the OSError a call raises becomes sockdiag's exception
    (NoSuchProcess, AccessDenied, UnsuitableSocket, NotSupported), chained."""
    return wrap_oserror(function, _exception)


# The calls on a socket raise _socket_exception's answer from the core itself.
_fast.set_socket_exception(_socket_exception)

# An older kernel to pretend to be (sockdiag._features, which is imported
# only when it is set: `import sockdiag` stays small).
ASSUME_KERNEL = "SOCKDIAG_ASSUME_KERNEL"


def _assumed_absent(feature: str) -> bool:
    """_features.assumed_absent(feature); False without SOCKDIAG_ASSUME_KERNEL."""
    if not os.environ.get(ASSUME_KERNEL):
        return False
    from . import _features

    return _features.assumed_absent(feature)


if os.environ.get(ASSUME_KERNEL):
    from . import _features

    _features.limit_to_assumed_kernel()
send_buffer = _fast.send_buffer
socket_queues = _fast.socket_queues
tcp_info = _fast.tcp_info


def tcp_sampler(sample_type, fields: tuple[str, ...]):
    """A _fast.TcpSampler (recording.py's fast path): its take(fd) raises
    sockdiag's exceptions, its info is the TcpInfo of the last take."""
    return _fast.TcpSampler(sample_type, fields)


def sysctl(name: str) -> str:
    """The value of the sysctl name ("net.core.rmem_max", read from
    /proc/sys/net/core/rmem_max) in this process's namespaces, without its
    newline; NotSupported when this kernel has none or it cannot be read."""
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path) as f:
            return f.read().rstrip("\n")
    except OSError as err:
        raise NotSupported(f"cannot read {path}: {err.strerror}") from err


_LOWAT_OFF = 0xFFFFFFFF


@wrap_exceptions
def get_notsent_lowat(sock) -> Optional[int]:
    # Per socket, 0 means "use net.ipv4.tcp_notsent_lowat" (of the caller's namespace).
    value = _fast.notsent_lowat(sock) or int(sysctl("net.ipv4.tcp_notsent_lowat"))
    return None if value >= _LOWAT_OFF else value


@wrap_exceptions
def set_notsent_lowat(sock, nbytes: Optional[int]) -> None:
    # None clears the socket's own limit; 0xFFFFFFFF would be "off" even if
    # the sysctl sets a system-wide limit, so None means "system default".
    _fast.set_notsent_lowat(sock, 0 if nbytes is None else nbytes)


# --- process sockets (sock_diag) ------------------------------------------------

# TIME_WAIT and NEW_SYN_RECV sockets belong to no fd: never dumped unless asked.
_STATE_NUMBERS = {name: number for number, name in enumerate(TCP_STATES) if name}
_DEFAULT_STATES = ~((1 << _STATE_NUMBERS["TIME_WAIT"]) | (1 << _STATE_NUMBERS["NEW_SYN_RECV"])) & 0xFFFFFFFF


def state_mask(states: Optional[Iterable[str]]) -> int:
    """sock_diag's state bitmask for state names ("ESTABLISHED", "syn-sent"…)."""
    if states is None:
        return _DEFAULT_STATES
    if isinstance(states, str):
        states = [states]
    mask = 0
    for state in states:
        mask |= 1 << _STATE_NUMBERS[parse_tcp_state(state)]
    return mask


def process_state(pid: int) -> Optional[str]:
    """The state letter of /proc/<pid>/stat ("R", "S", "T", "Z"…), None if gone."""
    return _fast.process_state_linux(pid)


# What earlier calls learnt (the names of small processes' sockets, the size
# of the machine's table, each cgroup's last full pass): a refresh of a known
# process or cgroup asks the kernel for its sockets by name instead of
# dumping (docs/perf.md, "Scale"; docs/cgroups.md).
_KNOWN = _fast.KnownSockets()


@wrap_exceptions
def process_sockets(pid: int, states: Optional[Iterable[str]] = None,
                    kinds: Iterable[str] = ("tcp",)) -> list[SocketInfo]:
    mask = state_mask(states)
    kinds_mask = kind_mask(kinds)
    if not 0 < pid <= PID_MAX:
        raise NoSuchProcess(pid)
    # Raises ESRCH (NoSuchProcess) for a process that exited during the pass.
    return _fast.process_sockets_linux(pid, mask, None, _KNOWN, kinds_mask)


@wrap_exceptions
def cgroup_namespace_sockets(pids: list[int], cgroup_id: int, namespace: Optional[int], bytecode: bytes,
                             states: Optional[Iterable[str]] = None) -> list[SocketInfo]:
    """The TCP sockets of a cgroup tree in one network namespace (the pass of
    cgroups.cgroup_sockets; pids: its processes there): by name or by a
    kernel-filtered dump, as _KNOWN decides (_fast.cgroup_sockets_linux)."""
    return _fast.cgroup_sockets_linux(pids, cgroup_id, namespace, bytecode, state_mask(states),
                                      _DEFAULT_STATES, _KNOWN)


# Capability numbers (<linux/capability.h>).
CAPABILITIES = {"CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21,
                "CAP_PERFMON": 38, "CAP_BPF": 39}


def effective_capabilities(status_text: str) -> int:
    """The CapEff mask of a /proc/<pid>/status text (0 when absent or unreadable)."""
    for line in status_text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[0] == "CapEff:":
            try:
                return int(fields[1], 16)
            except ValueError:
                return 0
    return 0


def own_capabilities() -> int:
    """This process's effective capability mask; OSError when /proc cannot tell."""
    return effective_capabilities(_proc_text(os.getpid(), "status"))


def has_capability(name: str) -> bool:
    """Whether this process has the capability name (a key of CAPABILITIES)
    in its effective set; False when /proc cannot tell."""
    try:
        return bool(own_capabilities() >> CAPABILITIES[name] & 1)
    except OSError:
        return False


@wrap_exceptions
def check_access(pid: int) -> None:
    """Raise NoSuchProcess or AccessDenied unless process_sockets(pid) may
    read the process's sockets; reads none (the checks of process_sockets:
    listing its fds, and entering its network namespace when it is another)."""
    if not 0 < pid <= PID_MAX:
        raise NoSuchProcess(pid)
    os.close(os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    theirs = os.stat(f"/proc/{pid}/ns/net")
    own = os.stat("/proc/thread-self/ns/net")
    if (theirs.st_ino, theirs.st_dev) != (own.st_ino, own.st_dev) and not has_capability("CAP_SYS_ADMIN"):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM), f"/proc/{pid}/ns/net")


def network_namespace(pid: int) -> Optional[int]:
    """The inode of pid's network namespace, None when it cannot be read."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def initial_network_namespace() -> Optional[int]:
    """The inode of the initial network namespace: that of the kernel's
    threads (kthreadd, pid 2 of the host's pid namespace); None when this
    /proc is a container's (its pid 2 is another process) or unreadable."""
    try:
        if _proc_text(2, "comm").strip() != "kthreadd":
            return None
    except OSError:
        return None
    return network_namespace(2)


def process_exists(pid: int) -> bool:
    """Whether pid is a process now (a zombie too): one stat, no read."""
    return os.path.exists(f"/proc/{pid}")


def all_pids() -> list[int]:
    """Every process of this pid namespace, now."""
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def thread_group(tid: int) -> Optional[int]:
    """The process (Tgid) of a thread; None once it is gone."""
    try:
        for line in _proc_text(tid, "status").splitlines():
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_cgroup(pid: int) -> Optional[str]:
    """pid's cgroup v2 path under the mount ("0::" in /proc/<pid>/cgroup), None
    once it is gone or when it cannot be read."""
    try:
        text = _proc_text(pid, "cgroup")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


MOUNTS = "/proc/mounts"


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(file system type, mount point) of each line of a /proc/mounts text, in order."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 2:
            found.append((fields[2], fields[1].replace("\\040", " ")))
    return found


def mount_points(fstype: str, mounts: str = MOUNTS) -> list[str]:
    """Where file systems of fstype are mounted, first mounted first; OSError when mounts cannot be read."""
    with open(mounts) as f:
        return [point for kind, point in parse_mounts(f.read()) if kind == fstype]


def sockets_of_processes(pids: Iterable[int], states: Optional[Iterable[str]] = None,
                         kinds: Iterable[str] = ("tcp",)
                         ) -> dict[int, "list[SocketInfo] | SockdiagError"]:
    """{pid: its sockets, or the exception reading them raised}: one kernel
    pass per network namespace for all of them (see process_sockets)."""
    mask = state_mask(states)
    kinds_mask = kind_mask(kinds)
    results: dict = {}
    namespaces: dict = {}
    for pid in dict.fromkeys(pids):
        if 0 < pid <= PID_MAX:
            namespaces.setdefault(network_namespace(pid) or -pid, []).append(pid)
        else:
            results[pid] = NoSuchProcess(pid)
    for group in namespaces.values():
        if len(group) == 1:
            # Alone in its namespace: process_sockets itself, which scans the
            # fds beside the dump (a big process pays half).
            try:
                results[group[0]] = process_sockets(group[0], states, kinds)
            except SockdiagError as err:
                results[group[0]] = err
            continue
        try:
            found = _fast.sockets_of_processes_linux(group, mask, _KNOWN, kinds_mask)
        except OSError as err:
            found = dict.fromkeys(group, err)
        for pid, sockets in found.items():
            if isinstance(sockets, OSError):
                results[pid] = _exception(sockets, "sockets_of_processes", pid)
            else:
                results[pid] = sockets
    return results


# --- interface counters ----------------------------------------------------------


@wrap_exceptions
def interfaces(pid: int = 0) -> dict[str, InterfaceCounters]:
    # One rtnetlink stats dump (and an ioctl per link) in pid's network namespace
    # (0: the calling thread's).
    try:
        return _fast.rtnl_interfaces(pid=pid)
    except ValueError as err:
        raise SockdiagError(f"malformed rtnetlink reply: {err}") from err


# --- fd headroom (top/watch) ---------------------------------------------------


def _open_fd_count(pid: int) -> int:
    """The number of pid's open fds (PermissionError as listing them would give)."""
    # Since Linux 6.2 the size of /proc/<pid>/fd is that number: no 19,000
    # entries to list for a busy server.  Opened (not stat'ed by path) so that
    # the permission check stays that of listing it.
    fd_dir = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        count = 0 if _assumed_absent("proc_fd_size") else os.fstat(fd_dir).st_size
        # 0 on older kernels (and for a process without fds: the same answer).
        return count if count > 0 else len(os.listdir(fd_dir))
    finally:
        os.close(fd_dir)


@wrap_exceptions
def fd_headroom(pid: int) -> FdHeadroom:
    """pid's open fds and its RLIMIT_NOFILE soft limit (None when unlimited)."""
    open_fds = _open_fd_count(pid)
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    for line in limits.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files"):].split()[0]
            return FdHeadroom(pid, open_fds, None if soft == "unlimited" else int(soft))
    raise NotSupported(f"/proc/{pid}/limits has no 'Max open files' line")


# --- processes: names (/proc) ----------------------------------------------------

# The kernel keeps at most 15 characters of a process's name (TASK_COMM_LEN 16).
_COMM_MAX_CHARS = 15


def _proc_text(pid: int, name: str) -> str:
    """The text of /proc/<pid>/<name>; OSError when it cannot be read.  The
    helpers that answer None for a process that is gone read with it: the
    library's exceptions (_read_proc_text) are not OSErrors."""
    # os.read rather than open(): its buffered file object cost a scrape
    # 5 us a watched process (of 12 to read a name).
    fd = os.open(f"/proc/{pid}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


# The text of /proc/<pid>/<name>; NoSuchProcess or AccessDenied when it cannot be read.
_read_proc_text = wrap_exceptions(_proc_text)


def process_stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the name, the state first (proc(5)'s
    field 3 is index 0).  The name may hold ")" and spaces: the last ")" ends it.
    NoSuchProcess or AccessDenied when it cannot be read."""
    return _read_proc_text(pid, "stat").rsplit(")", 1)[1].split()


def boot_time_s() -> float:
    """When the machine booted, in seconds since the epoch (/proc/stat's btime)."""
    with open("/proc/stat", "rb") as f:
        return next(float(line.split()[1]) for line in f if line.startswith(b"btime "))


def process_name(pid: int) -> str:
    """The process's name as ps and pgrep show it (/proc/<pid>/comm).

    The kernel cuts names at 15 characters; then the name is the basename of
    argv[0] when it starts with the cut name (psutil's rule), so long names
    match.  Raises NoSuchProcess, AccessDenied.
    """
    comm = _read_proc_text(pid, "comm").rstrip("\n")
    if len(comm) == _COMM_MAX_CHARS:
        try:
            argv0 = _read_proc_text(pid, "cmdline").split("\0", 1)[0]
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


# --- kernel requests the feature probes share with the library ----------------

# enum in <linux/inet_diag.h>; the op is followed by the u64 cgroup id.
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_CGROUP_COND = 13
_BC_OP = struct.Struct("=BBH")
_CGROUP_COND_SIZE = _BC_OP.size + 8
_BYTECODE_MAX = 0xFFFF - 4  # one netlink attribute


def filter_bytecode(ids: Iterable[int]) -> bytes:
    """inet_diag bytecode keeping the sockets of any of the cgroup ids, as
    iproute2's ssfilter_bytecompile writes "A or B": each condition but the
    last is followed by a jump to the end (the kernel's audit follows the
    "yes" branches, so every op must be reached by one)."""
    ids = list(dict.fromkeys(ids))
    length = len(ids) * (_CGROUP_COND_SIZE + _BC_OP.size) - _BC_OP.size
    if not ids or length > _BYTECODE_MAX:
        raise SockdiagError(f"{len(ids)} cgroups: a kernel filter holds 1 to "
                            f"{(_BYTECODE_MAX + _BC_OP.size) // (_CGROUP_COND_SIZE + _BC_OP.size)}")
    code = bytearray()
    for i, cgroup_id in enumerate(ids):
        # yes: the next op (the jump to the end: keep); no: past the jump (the
        # next id), or past the end (drop).
        code += _BC_OP.pack(INET_DIAG_BC_CGROUP_COND, _CGROUP_COND_SIZE, _CGROUP_COND_SIZE + 4)
        code += struct.pack("=Q", cgroup_id)
        if i < len(ids) - 1:
            # A jump always takes "no".
            code += _BC_OP.pack(INET_DIAG_BC_JMP, _BC_OP.size, length - len(code))
    return bytes(code)


# The tracepoint of TCP state changes, under the tracefs mount (sockdiag.tracing).
TRACEPOINT_EVENT = "events/sock/inet_sock_set_state"


def tracefs_mount() -> Optional[str]:
    """Where tracefs is mounted, or None."""
    return next(iter(mount_points("tracefs")), None)


def tracepoint_exists() -> Optional[bool]:
    """Whether the kernel has the sock:inet_sock_set_state tracepoint; None
    when tracefs is not mounted or not readable here (nothing was tried)."""
    mount = tracefs_mount()
    if mount is None or not os.access(os.path.join(mount, "events"), os.R_OK | os.X_OK):
        return None
    return os.path.isdir(os.path.join(mount, TRACEPOINT_EVENT))
