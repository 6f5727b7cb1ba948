"""cgroups as a selector: the kernel's cgroup filter against ss, names, watch/export/top --cgroup.

The tests make their own cgroups (v2, under the cgroup2 mount found in
/proc/mounts), move child processes into them, and remove them at the end;
a killed run's leftovers are removed by the next.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner

import sockdiag
from sockdiag import NotSupported, SockdiagError, _linux, accounting, cgroups
from sockdiag._common import ProcessTraffic
from sockdiag.cli import cli
from testsupport.children import end, python_child
from testsupport.held_sockets import HeldSockets
from testsupport.terminal import Terminal, requires_tmux

from conftest import requires_linux, requires_ss

PREFIX = "sockdiag-test-"


def _cgroup2_or_skip() -> str:
    if os.geteuid() != 0:
        pytest.skip("making cgroups needs root")
    try:
        return cgroups.cgroup2_mount()
    except NotSupported as err:
        pytest.skip(str(err))


def _remove_tree(path: str) -> None:
    """rmdir a cgroup and the cgroups below it, deepest first (their processes must be gone)."""
    for directory, _subdirectories, _files in sorted(os.walk(path), key=lambda entry: -entry[0].count("/")):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            pass


@pytest.fixture
def cgroup_dir():
    mount = _cgroup2_or_skip()
    for entry in os.listdir(mount):  # a killed run's leftovers
        if entry.startswith(PREFIX) and not os.path.exists(f"/proc/{entry[len(PREFIX):]}"):
            _remove_tree(os.path.join(mount, entry))
    path = os.path.join(mount, f"{PREFIX}{os.getpid()}")
    os.makedirs(os.path.join(path, "app.service"))
    yield path
    for directory, _subdirectories, _files in os.walk(path):
        try:
            with open(os.path.join(directory, "cgroup.procs")) as f:
                for pid in f.read().split():
                    os.kill(int(pid), 9)
        except (FileNotFoundError, ProcessLookupError):
            pass
    _remove_tree(path)


HOLDER = textwrap.dedent("""
    import socket, sys
    sys.stdin.readline()  # moved into its cgroup first: the sockets are made there
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
    keep = []
    for _ in range(int(sys.argv[1])):
        c = socket.create_connection(l.getsockname()); s, _ = l.accept(); keep += [c, s]
    print(l.getsockname()[1], flush=True)
    sys.stdin.readline()
""")


def _child_in(cgroup_path: str, script: str, *args: str) -> subprocess.Popen:
    """A Python child (python_child) running script, moved into the cgroup."""
    child = python_child(script, *args)
    try:
        with open(os.path.join(cgroup_path, "cgroup.procs"), "w") as f:
            f.write(str(child.pid))
    except BaseException:
        end(child)
        raise
    return child


def _holder_in(cgroup_path: str, script: str, *args: str) -> tuple[subprocess.Popen, int]:
    """A child that makes its sockets once in the cgroup (HOLDER: a listener and
    args[0] connections to it) and prints its listening port; (child, port)."""
    child = _child_in(cgroup_path, script, *args)
    child.stdin.write("go\n")
    child.stdin.flush()
    return child, int(child.stdout.readline())


def _ss_ports(relative: str) -> set[tuple[int, int]]:
    out = subprocess.run(["ss", "-tanH", "cgroup", relative], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        fields = line.split()
        ports.add((int(fields[3].rsplit(":", 1)[1]), int(fields[4].rsplit(":", 1)[1].replace("*", "0"))))
    return ports


@requires_linux
@requires_ss
def test_cgroup_sockets_are_what_ss_filters_by_cgroup(cgroup_dir):
    top_child, _ = _holder_in(cgroup_dir, HOLDER, "2")
    service_child, service_port = _holder_in(os.path.join(cgroup_dir, "app.service"), HOLDER, "3")
    outside = subprocess.Popen([sys.executable, "-c", HOLDER, "2"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        outside.stdin.write("go\n")
        outside.stdin.flush()
        outside.stdout.readline()
        cgroup = cgroups.open_cgroup(cgroup_dir)
        found = cgroups.cgroup_sockets(cgroup)
        ports = {(s.local_port, s.remote_port) for s in found}
        relative = cgroup.relative
        # The cgroup and the one below it, nothing else: 1 + 4 and 1 + 6 sockets.
        assert ports == _ss_ports(relative) | _ss_ports(relative + "/app.service")
        assert len(found) == 5 + 7
        assert all(s.fd is None for s in found)
        service = cgroups.open_cgroup(relative + "/app.service")  # as /proc/PID/cgroup shows it
        assert service.name == "app.service"
        assert {s.local_port for s in cgroups.cgroup_sockets(service, ["LISTEN"])} == {service_port}
        assert sorted(cgroups.cgroup_pids(cgroup)) == sorted([top_child.pid, service_child.pid])
    finally:
        for child in (top_child, service_child, outside):
            end(child)


@requires_linux
def test_watch_cgroup_once_json_has_the_watch_shape(cgroup_dir):
    child, _ = _holder_in(cgroup_dir, HOLDER, "3")
    try:
        by_cgroup = CliRunner().invoke(cli, ["watch", "--cgroup", cgroup_dir, "--once", "--json"])
        by_pid = CliRunner().invoke(cli, ["watch", str(child.pid), "--once", "--json"])
        assert by_cgroup.exit_code == 0, by_cgroup.output
        cgroup_sample, pid_sample = json.loads(by_cgroup.output), json.loads(by_pid.output)
        assert set(pid_sample) <= set(cgroup_sample)
        assert set(cgroup_sample) - set(pid_sample) == {"cgroup", "pids"}
        assert cgroup_sample["pid"] is None and cgroup_sample["pids"] == [child.pid]
        assert set(cgroup_sample["sockets"][0]) == set(pid_sample["sockets"][0])
        assert ({(s["local"], s["remote"]) for s in cgroup_sample["sockets"]}
                == {(s["local"], s["remote"]) for s in pid_sample["sockets"]})
        table = CliRunner().invoke(cli, ["watch", "--cgroup", cgroup_dir, "--once"])
        assert table.output.startswith(f"cgroup /{os.path.basename(cgroup_dir)} (1 processes)")
    finally:
        end(child)


@requires_tmux
def test_a_watched_cgroup_removed_is_said_on_a_line_of_its_own(cgroup_dir):
    """The notice waits for the live screen to end, then takes a line of its own under it."""
    child, _ = _holder_in(cgroup_dir, HOLDER, "2")
    try:
        with Terminal("watch", "--cgroup", cgroup_dir, "-i", "0.3", height=40) as terminal:
            terminal.wait_for("sort: unsent")
            end(child)
            _remove_tree(cgroup_dir)
            assert terminal.exit_status() == 0
            lines = terminal.screen().splitlines()
    finally:
        end(child)
    said = [line for line in lines if "was removed" in line]
    assert said == [f"sockdiag: cgroup /{os.path.basename(cgroup_dir)} was removed"], lines
    assert not any("?: keys" in line and "sockdiag:" in line for line in lines)


@requires_linux
def test_processes_entering_and_leaving_between_refreshes(cgroup_dir):
    from sockdiag import _watch

    cgroup = cgroups.open_cgroup(cgroup_dir)
    assert _watch.take_cgroup_sample(cgroup).pids == ()
    child, _ = _holder_in(cgroup_dir, HOLDER, "1")
    try:
        sample = _watch.take_cgroup_sample(cgroup)
        assert sample.pids == (child.pid,) and len(sample.sockets) == 3
    finally:
        end(child)
    sample = _watch.take_cgroup_sample(cgroup)
    assert sample.pids == () and sample.sockets == ()


@requires_linux
def test_export_cgroup_series_and_a_cgroup_that_disappears(cgroup_dir):
    pytest.importorskip("prometheus_client")
    from sockdiag import export, exposition
    from testsupport.exposition import both_texts

    child, _ = _holder_in(cgroup_dir, HOLDER, "2")
    collector = export.Collector(cgroups=[cgroup_dir])
    relative = cgroups.open_cgroup(cgroup_dir).relative
    try:
        fast, reference = both_texts(export.registry(collector).collect())
        assert fast == reference
        text = fast.decode()
        assert (f'sockdiag_cgroup_sockets{{cgroup="{relative}",name="{relative}",state="ESTABLISHED"}} 4.0'
                in text)
        assert f'sockdiag_cgroup_unsent_bytes{{cgroup="{relative}",name="{relative}"}} 0.0' in text
        assert "sockdiag_cgroup_queue_delay_seconds_gcount" in text
        assert "sockdiag_watched_cgroups 1.0" in text
    finally:
        end(child)
    _remove_tree(cgroup_dir)
    text = exposition.scrape(collector).decode()
    assert "sockdiag_watched_cgroups 0.0" in text
    assert 'sockdiag_scrape_errors_total{source="cgroup"} 0.0' in text
    assert "sockdiag_cgroup_sockets{" not in text


@requires_linux
def test_export_cgroup_sums_are_the_kernels(cgroup_dir):
    """Each sockdiag_cgroup_* byte sum against the sum of what the kernel
    says in the cgroup's process about each of its sockets."""
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from sockdiag import export, exposition

    held = HeldSockets()
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
            f.write(str(held.pid))
        held.start()
        collector = export.Collector(cgroups=[cgroup_dir])
        report, text = held.settled(lambda: exposition.scrape(collector).decode())
    finally:
        held.close()
    relative = cgroups.open_cgroup(cgroup_dir).relative
    scraped = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name.startswith("sockdiag_cgroup_") and s.labels.get("cgroup") == relative
               and "state" not in s.labels and "le" not in s.labels}
    expected = {
        "unacked": sum(k["outq"] - k["outq_unsent"] for k in report),
        "unsent": sum(k["outq_unsent"] for k in report),
        "send_queue": sum(k["outq"] for k in report),
        "send_buffer_free": sum(max(k["sndbuf"] - k["wmem_queued"], 0) for k in report),
        "receive_queue": sum(k["inq"] for k in report),
    }
    assert expected["unsent"] > 100_000 and expected["receive_queue"] > 3500
    for quantity, total in expected.items():
        assert scraped[f"sockdiag_cgroup_{quantity}_bytes"] == total, quantity


@requires_linux
def test_bad_cgroup_input_is_one_line_and_exit_1(tmp_path):
    missing = "/sockdiag-no-such-cgroup"
    for args in (["watch", "--cgroup", missing, "--once"], ["export", "--once", "--cgroup", missing]):
        done = subprocess.run([sys.executable, "-c", "from sockdiag.cli import main; main()", *args],
                              capture_output=True, text=True)
        assert done.returncode == 1, done
        assert done.stderr.count("\n") == 1 and "no cgroup" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    mounts = tmp_path / "mounts"
    mounts.write_text("cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    with pytest.raises(NotSupported, match="v1-only"):
        cgroups.cgroup2_mount(str(mounts))


@pytest.mark.parametrize("relative, name", [
    ("/system.slice/nginx.service", "nginx.service"),
    ("/system.slice/docker-" + "ab" * 32 + ".scope", "docker " + "ab" * 6),
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/"
     "cri-containerd-" + "cd" * 32 + ".scope", "pod 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 container " + "cd" * 6),
    ("/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "pod 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
    ("/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/" + "ef" * 32,
     "pod 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 container " + "ef" * 6),
    ("/machine.slice/libpod-" + "01" * 32 + ".scope", "podman " + "01" * 6),
    ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
    ("/batch/jobs", "/batch/jobs"),
    ("/", "/"),
])
def test_readable_names(relative, name):
    assert cgroups.name_of(relative) == name


def test_filter_bytecode_is_ss_for_one_cgroup_and_or_chained_for_more():
    # ss --cgroup: one CGROUP_COND, yes = 12 (keep), no = 16 (past the end: drop).
    assert _linux.filter_bytecode([7]) == bytes([13, 12, 16, 0]) + (7).to_bytes(8, "little")
    code = _linux.filter_bytecode([7, 8, 9])
    assert len(code) == 3 * 12 + 2 * 4
    assert code[12:16] == bytes([1, 4, 32, 0])  # JMP to the end
    with pytest.raises(SockdiagError):
        _linux.filter_bytecode([])


def test_top_by_cgroup_sums_each_cgroups_processes():
    def row(pid, sent):
        return ProcessTraffic(pid, f"p{pid}", 1, 0, sent, sent, 5, None, sent, sent, 5.0, None,
                              sent, sent, 5, None)

    known = {1: "/system.slice/a.service", 2: "/system.slice/a.service", 3: "/system.slice/b.service"}
    rows = {r.name: r for r in accounting.by_cgroup([row(1, 10), row(2, 20), row(3, 1), row(None, 4)], known)}
    assert set(rows) == {"a.service", "b.service", "(unattributed)"}
    assert rows["a.service"].sent_bytes == 30 and rows["a.service"].connections == 2
    assert rows["a.service"].pid is None and rows["a.service"].retrans_bytes is None


@requires_linux
def test_top_by_cgroup_runs(cgroup_dir):
    done = CliRunner().invoke(cli, ["top", "--by", "cgroup", "--once", "--json", "-i", "0.2",
                                    "--no-trace-connects"])
    assert done.exit_code == 0, done.output
    assert all(p["pid"] is None for p in json.loads(done.output)["processes"])


@requires_linux
def test_cgroup_refresh_by_name_equals_the_filtered_dump_on_churn(cgroup_dir):
    from sockdiag import _fast, _linux
    from sockdiag._linux import state_mask
    from test_scale import CHURNER

    # Its listener is made before it joins: held by the cgroup's process, not the cgroup's socket.
    child = _child_in(cgroup_dir, CHURNER)
    try:
        cgroup = cgroups.open_cgroup(cgroup_dir)
        bytecode = _linux.filter_bytecode([cgroup.id])

        def key_of(info):
            return (info.inode, info.local_port, info.remote_port, info.state, info.send_queue, info.unsent)

        # "open 2" after passes by name: sockets made since the last pass are
        # held but unaccounted for, so the refresh is a full pass that finds them.
        for command, expected_pass in [("open 4", "full"), ("noop", "by name"), ("shutdown 2", "by name"),
                                       ("fill 2", "by name"), ("close 1", "by name"), ("open 2", "full"),
                                       ("noop", "by name")]:
            child.stdin.write(command + "\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "ok"
            # The one KnownSockets of process refreshes serves cgroups too.
            before = (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes)
            refreshed = cgroups.cgroup_sockets(cgroup)
            took = {(1, 0): "full", (0, 1): "by name"}[
                (_linux._KNOWN.dump_passes - before[0], _linux._KNOWN.exact_passes - before[1])]
            assert took == expected_pass, command
            for _ in range(10):  # loopback may still move a few KiB of a full buffer: read again
                filtered = _fast.namespace_sockets_linux(state_mask(None), bytecode)
                if sorted(map(key_of, refreshed)) == sorted(map(key_of, filtered)):
                    break
                time.sleep(0.05)
                refreshed = cgroups.cgroup_sockets(cgroup)
            assert sorted(map(key_of, refreshed)) == sorted(map(key_of, filtered)), command
    finally:
        end(child)


@requires_linux
def test_cgroup_passes_are_remembered_for_at_most_64_cgroups_and_namespaces(cgroup_dir):
    from sockdiag import _fast
    from sockdiag._linux import _DEFAULT_STATES

    known = _fast.KnownSockets()
    bytecode = _linux.filter_bytecode([cgroups.open_cgroup(cgroup_dir).id])

    def read(cgroup_id: int) -> str:
        before = known.exact_passes
        _fast.cgroup_sockets_linux([], cgroup_id, None, bytecode, _DEFAULT_STATES, _DEFAULT_STATES, known)
        return "by name" if known.exact_passes > before else "full"

    assert [read(1), read(1), read(1 << 40)] == ["full", "by name", "full"]
    for cgroup_id in range(2, 67):  # past 64 remembered, all are forgotten
        read(cgroup_id)
    assert [read(1), read(1)] == ["full", "by name"]


KINDS_HOLDER = textwrap.dedent("""
    import socket, sys
    sys.stdin.readline()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
    a, b = socket.socketpair()
    l = socket.create_server(("127.0.0.1", 0))
    print(l.getsockname()[1], flush=True)
    sys.stdin.readline()
""")


@requires_linux
def test_cgroup_sockets_of_every_kind_are_those_its_processes_hold(cgroup_dir):
    child, port = _holder_in(cgroup_dir, KINDS_HOLDER)
    try:
        cgroup = cgroups.open_cgroup(cgroup_dir)
        every = cgroups.cgroup_sockets(cgroup, kinds=("tcp", "udp", "unix"))
        held = sockdiag.process_sockets(child.pid, kinds=("tcp", "udp", "unix"))
        assert sorted((s.kind, s.inode) for s in every) == sorted((s.kind, s.inode) for s in held)
        assert sorted(s.kind for s in every) == ["tcp", "udp", "unix", "unix"]
        assert all(s.fd is None for s in every)
        assert [s.local_port for s in cgroups.cgroup_sockets(cgroup)] == [port]
        assert {s.kind for s in cgroups.cgroup_sockets(cgroup, kinds="unix")} == {"unix"}
        with pytest.raises(ValueError, match="socket kind"):
            cgroups.cgroup_sockets(cgroup, kinds="sctp")
    finally:
        end(child)
