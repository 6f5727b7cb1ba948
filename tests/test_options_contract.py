"""Options a careless user gives: empty paths, zero budgets and sizes, a
queue of no time, a removed cgroup, and replay, which refuses or honours
every option of watch (never ignores one) and keeps the live socket order."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from sockdiag import cgroups

from conftest import requires_linux
from testsupport.terminal import SOCKDIAG

pytestmark = requires_linux


def sockdiag(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(SOCKDIAG + list(args), capture_output=True, text=True, timeout=timeout)


def refused(done: subprocess.CompletedProcess, words: str) -> None:
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: ") and words in done.stderr, done.stderr


@pytest.mark.parametrize("args", [
    ["watch", "--cgroup", "", "--once"],
    ["export", "--once", "--cgroup", ""],
    ["watch", str(os.getpid()), "--once", "--record", ""],
    ["watch", "--replay", ""],
    ["export", "--once", "--web-config", ""],
    ["plot", "", "-o", "x.png"],
    ["plot", "x.jsonl", "-o", ""],
], ids=["watch --cgroup", "export --cgroup", "--record", "--replay", "--web-config", "plot FILE", "plot -o"])
def test_an_empty_path_is_refused(args):
    refused(sockdiag(*args), "an empty path names no")


def test_the_api_refuses_an_empty_or_bytes_cgroup_path():
    with pytest.raises(ValueError, match="empty path names no cgroup"):
        cgroups.open_cgroup("")
    with pytest.raises(TypeError, match="is not a str"):
        cgroups.open_cgroup(b"/x")


@pytest.mark.parametrize("option, value", [("--budget-sent", "0"), ("--budget-sent", "0.5"),
                                           ("--budget-received", "0")])
def test_a_zero_budget_is_refused(option, value):
    refused(sockdiag("watch", str(os.getpid()), "--once", option, value), "is not a size from 1")


@pytest.mark.parametrize("value", ["0", "0.5"])
def test_a_zero_max_size_is_refused(tmp_path, value):
    refused(sockdiag("ifstat", "--once", "--record", str(tmp_path / "f.jsonl"), "--max-size", value),
            "is not a size from 1")
    assert not (tmp_path / "f.jsonl").exists()


def test_a_queue_of_no_time_is_refused():
    refused(sockdiag("bench", "lowat", "--queue-latency", "0ms", "--quick"), "a queue must hold some time")
    refused(sockdiag("bench", "lowat", "--queue-latency", "0", "--quick"), "a queue must hold some time")


def test_a_removed_cgroup_ends_the_view():
    """As `watch PID` says a process exited: one notice, and the view ends before --count runs out."""
    if os.geteuid() != 0:
        pytest.skip("making cgroups needs root")
    mount = cgroups.cgroup2_mount()
    path = os.path.join(mount, f"sockdiag-test-removed-{os.getpid()}")
    os.mkdir(path)
    try:
        watcher = subprocess.Popen(SOCKDIAG + ["watch", "--cgroup", path, "-i", "0.1", "-n", "600", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        os.rmdir(path)
        out, err = watcher.communicate(timeout=30)
    finally:
        if os.path.exists(path):
            os.rmdir(path)
    assert watcher.returncode == 0
    assert err == f"sockdiag: cgroup /{os.path.basename(path)} was removed\n"
    assert 1 <= len(out.splitlines()) < 600


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """`watch` of this process recorded while it holds connections on two listeners."""
    path = tmp_path_factory.mktemp("replay") / "r.jsonl"
    listeners = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    pairs = []
    for listener in listeners:
        for _ in range(3):
            client = socket.create_connection(listener.getsockname())
            pairs += [client, listener.accept()[0]]
    watcher = subprocess.Popen(SOCKDIAG + ["watch", str(os.getpid()), "-i", "0.1", "-n", "12", "--json",
                                           "--record", str(path)], stdout=subprocess.PIPE, text=True)
    for _ in range(5):  # connections come and go while it records
        time.sleep(0.15)
        client = socket.create_connection(listeners[0].getsockname())
        pairs += [client, listeners[0].accept()[0]]
        pairs.pop(0).close()
    live, _ = watcher.communicate(timeout=60)
    ports = [listener.getsockname()[1] for listener in listeners]
    for sock in pairs + listeners:
        sock.close()
    return path, [json.loads(line) for line in live.splitlines()], ports


def test_replay_keeps_the_live_socket_order(recording):
    path, live, _ = recording
    done = sockdiag("watch", "--replay", str(path), "--json", "-i", "0.01")
    assert done.returncode == 0, done.stderr
    replayed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(replayed) == len(live) == 12
    for shown, again in zip(live, replayed):
        assert [(s["fd"], s["local"], s["remote"]) for s in again["sockets"]] == \
            [(s["fd"], s["local"], s["remote"]) for s in shown["sockets"]]


def test_replay_honours_port_state_and_interval(recording):
    path, live, ports = recording
    done = sockdiag("watch", "--replay", str(path), "--json", "-i", "0.01", "-p", str(ports[1]),
                    "--state", "listen")
    assert done.returncode == 0, done.stderr
    replayed = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(replayed) == 12
    for line in replayed:
        assert [(s["state"], s["local"]) for s in line["sockets"]] == [("LISTEN", f"127.0.0.1:{ports[1]}")]


@pytest.mark.parametrize("args, named", [
    ([str(os.getpid())], "a PID"), (["--cgroup", "/"], "--cgroup"), (["--record", "x.jsonl"], "--record"),
    (["--budget-sent", "1M"], "--budget-sent"), (["--budget-received", "1M"], "--budget-received"),
    (["--on-exceed", "kill"], "--on-exceed"),
])
def test_replay_refuses_what_acts_on_a_live_process(recording, args, named):
    path, _, _ = recording
    refused(sockdiag("watch", "--replay", str(path), *args), f"--replay plays a recording back: it takes no {named}")
