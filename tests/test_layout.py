"""The rooms and the direction of imports (docs/architecture.md), checked on the source.

Imports go down the rooms only (the core's too); above _platform, the OS's
functions come from sockdiag._platform, never from _linux, _darwin or the
package face ``sockdiag``.  The per-field table covers every column the views show.
"""

from __future__ import annotations

import ast
import pathlib
import re
import sys

import pytest

from sockdiag import fields
from sockdiag.views import ifstat, top, watch

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sockdiag"
LIBRARY = sorted(p for p in PACKAGE.rglob("*.py")
                 if p.name != "__init__.py" or p.parent != PACKAGE
                 if "views" not in p.parts and "cli" not in p.parts)
VIEWS = sorted((PACKAGE / "views").glob("*.py"))


def imported(path: pathlib.Path) -> set[str]:
    """Absolute names of the modules (and sockdiag attributes) that path imports."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = ".".join(filter(None, [base if node.level else "", node.module or ""]))
            if node.module:
                names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists() or any(
        path.parent.glob(path.name + ".*.so")) or path.with_suffix(".pyx").exists()


# Where /proc may be read: the platform room, the doctor (its report is of
# this machine's /proc/mounts), the pure-Python twin (an independent reader by
# design) and bench lowat's topology, which reads the sysctls of the
# namespaces it builds.
PROC_READERS = {"_linux.py", "_features.py", "doctor.py", "reference.py", "lowat/topology.py"}


@pytest.mark.parametrize("path", LIBRARY + VIEWS, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_only_the_platform_room_reads_proc(path):
    if path.relative_to(PACKAGE).as_posix() in PROC_READERS:
        return
    literals = [node.value for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    assert not [text for text in literals if text.startswith("/proc")], path.name


# The rooms of docs/architecture.md, top down, by the name under sockdiag;
# every other module is the library's (room 2), the package face too.
ROOMS = {"cli": 0, "views": 1, "_platform": 3, "_linux": 4, "_darwin": 4, "_features": 4, "decode": 4,
         "_fast": 5, "includes": 6, "_common": 6, "_exceptions": 6, "_validate": 6}
LIBRARY_ROOM, PLATFORM_ROOM = 2, 3
# Above the platform room, the OS's functions come from _platform only.
PLATFORM_MODULES = {"_linux", "_darwin"}
# The one import upward: _platform hands out cgroups' functions (at first use).
UPWARD = {("sockdiag._platform", "sockdiag.cgroups")}
# The core's Python-level imports (its cimports are of includes/).
CORE_IMPORT = re.compile(r"^\s*from\s+\.([\w.]+)\s+c?import", re.M)


def room(name: str) -> int:
    """The room of a module sockdiag.X... (or of a name taken from it)."""
    parts = name.split(".")
    return ROOMS.get(parts[1], LIBRARY_ROOM) if len(parts) > 1 else LIBRARY_ROOM


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


CORE = sorted(PACKAGE.glob("_fast*.pyx")) + sorted(PACKAGE.glob("_fast*.pxi"))


def sockdiag_imports(path: pathlib.Path) -> set[str]:
    if path.suffix == ".py":
        return {name for name in imported(path) if name.partition(".")[0] == "sockdiag"}
    return {"sockdiag." + name for name in CORE_IMPORT.findall(path.read_text())}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")) + CORE,
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_only(path):
    importer = "sockdiag._fast" if path in CORE else module_name(path)
    for name in sockdiag_imports(path):
        if (importer, name.rpartition(".")[0]) in UPWARD or (importer, name) in UPWARD:
            continue
        assert room(name) >= room(importer), f"{importer} imports {name}, a room above it"
        if room(importer) < PLATFORM_ROOM:
            assert name.split(".")[1] not in PLATFORM_MODULES, \
                f"{importer} imports {name}: take it from sockdiag._platform"


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_modules_import_neither_the_face_nor_a_view(path):
    for name in imported(path):
        assert not name.startswith(("sockdiag.views", "sockdiag.cli")), f"{path.name} imports {name}"
        if name.startswith("sockdiag.") and name.count(".") == 1:
            assert _is_module(name), f"{path.name} takes {name} from the package face"
        assert name != "sockdiag" or path.name == "__init__.py", f"{path.name} imports sockdiag"


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: p.name)
def test_views_import_no_command_and_not_the_face(path):
    for name in imported(path):
        assert not name.startswith("sockdiag.cli"), f"{path.name} imports {name}"
        if name.startswith("sockdiag.") and name.count(".") == 1:
            assert _is_module(name), f"{path.name} takes {name} from the package face"


@pytest.mark.parametrize("columns, table", [
    (watch.COLUMNS, fields.SOCKET_FIELDS),
    (top.COLUMNS, fields.TRAFFIC_FIELDS),
    (ifstat.COLUMNS, fields.INTERFACE_FIELDS),
], ids=["watch", "top", "ifstat"])
def test_every_column_is_in_the_field_table(columns, table):
    for label, field in zip(columns, fields.columns(table, columns)):
        assert field.label == label
        assert field.is_rate == field.unit.endswith("/s") == label.endswith("/s"), label


def test_watch_json_keys_are_the_documented_ones():
    assert [key for key, *_ in fields.SOCKET_JSON_FIELDS] == [
        "fd", "kind", "socket_type", "family", "local", "remote", "state", "unacked", "unsent", "free",
        "sndbuf", "send_queue", "recv_queue", "rcvbuf", "drops", "backlog_limit", "peer_inode", "queue_delay_s", "queue_delay_basis", "stalled_s", "limited_by",
        "congestion", "rtt_us", "snd_cwnd_segs",
        "delivery_rate_bps", "total_retrans", "bytes_sent", "bytes_acked", "bytes_received"]


def test_json_keys_of_the_field_tables_are_those_the_views_write():
    from sockdiag import InterfaceCounters, InterfaceRates, ProcessTraffic

    traffic_keys = set(ProcessTraffic._fields)
    interface_keys = (set(InterfaceCounters._fields) | set(InterfaceRates._fields)) - {"name"}
    for table, keys in ((fields.TRAFFIC_FIELDS, traffic_keys), (fields.INTERFACE_FIELDS, interface_keys)):
        for field in table:
            assert field.json_key is None or field.json_key in keys, field.name


def test_every_command_takes_json():
    import click

    from sockdiag.cli import cli

    def commands(group, path=()):
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                yield from commands(command, path + (name,))
            else:
                yield " ".join(path + (name,)), command

    lacking = [name for name, command in commands(cli)
               if not any(param.name == "as_json" for param in command.params)]
    assert lacking == []


def test_the_records_shown_in_the_docs_have_their_fields():
    """A struct's repr in docs/ lists the struct's fields, in order."""
    import pathlib

    import sockdiag

    docs = pathlib.Path(__file__).resolve().parent.parent / "docs"
    shown = 0
    for page in docs.glob("*.md"):
        text = page.read_text()
        for name in ("InterfaceCounters", "InterfaceRates", "SendBuffer", "SocketInfo", "FdHeadroom"):
            for found in re.finditer(rf"^{name}\((.*?)\)$", text, re.M | re.S):
                keys = re.findall(r"(\w+)=", found.group(1))
                assert keys == list(getattr(sockdiag, name)._fields), (page.name, name)
                shown += 1
    assert shown >= 2


# What `import sockdiag` may load of sockdiag, and what it must not load at
# all: the views, the commands and their libraries, and the modules whose
# import alone costs a start-up milliseconds (docs/perf.md, "Start-up").
LIBRARY_AT_IMPORT = {"sockdiag", "sockdiag._common", "sockdiag._fast", "sockdiag._linux",
                     "sockdiag._platform", "sockdiag._validate", "sockdiag.recording",
                     "sockdiag._exceptions"}
NEVER_AT_IMPORT = {"click", "tabulate", "matplotlib", "yaml", "prometheus_client", "dataclasses",
                   "inspect", "importlib.metadata", "json", "socket", "asyncio"}
COMMANDS = {"sockdiag.cli." + p.stem for p in (PACKAGE / "cli").glob("*.py")
            if p.stem not in ("__init__", "options")}


def modules_loaded(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded once it ran code (sockdiag's
    CLI is run by _run, which returns, rather than main, which ends the process)."""
    import subprocess

    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, check=True)
    return set(result.stdout.split("\n")[-2].split())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux platform module's imports")
def test_import_sockdiag_loads_the_library_core_only():
    loaded = modules_loaded("import sockdiag")
    assert {name for name in loaded if name.startswith("sockdiag")} == LIBRARY_AT_IMPORT
    assert not {name.partition(".")[0] for name in loaded} & NEVER_AT_IMPORT
    assert not loaded & NEVER_AT_IMPORT


@pytest.mark.parametrize("argv, command", [
    (["--version"], None),
    (["watch", "1", "--once", "--json"], "sockdiag.cli.watch"),
    (["ifstat", "--once", "--json"], "sockdiag.cli.ifstat"),
])
def test_the_cli_imports_only_the_command_that_runs(argv, command):
    code = ("import contextlib, io\nfrom sockdiag.cli import _run\n"
            f"sys.argv[1:] = {argv!r}\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
            "    _run()")
    loaded = modules_loaded(code)
    assert loaded & COMMANDS == ({command} if command else set())
    assert not {"tabulate", "matplotlib", "yaml", "prometheus_client"} & {n.partition(".")[0] for n in loaded}
