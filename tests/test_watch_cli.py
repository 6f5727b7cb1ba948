"""sockdiag watch / demo: the command line, its errors, and the live view in a terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from sockdiag import _watch, fields
from sockdiag.views import watch as watch_view
from sockdiag._common import SocketInfo, TcpInfo
from sockdiag.cli import cli
from testsupport.children import python_child, with_default_stop_signals
from testsupport.terminal import Terminal, requires_tmux
from conftest import requires_root

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sock_diag is Linux only")

CLI = [sys.executable, "-c", "from sockdiag.cli import main; main()"]


def run_cli(*args: str, timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture
def held_child():
    """A child process holding a listener and one connection to itself with data queued."""
    code = textwrap.dedent("""
        import socket, sys
        from testsupport.loopback import fill
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
        c = socket.create_connection(l.getsockname()); s, _ = l.accept()
        fill(c)
        print(l.getsockname()[1], c.fileno(), flush=True)
        sys.stdin.read()
    """)
    child = python_child(code)
    port, sender_fd = map(int, child.stdout.readline().split())
    yield child, port, sender_fd
    child.stdin.close()
    child.wait(timeout=10)


def test_once_prints_header_and_rows(held_child):
    child, port, sender_fd = held_child
    result = CliRunner().invoke(cli, ["watch", str(child.pid), "--once"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"pid {child.pid} (python")
    assert "3 sockets (3 TCP): 2 ESTABLISHED, 1 LISTEN" in lines[0]
    assert "rates from the next sample" in lines[1]  # the first sample shows no rate
    header = next(i for i, line in enumerate(lines) if line.startswith("FD "))
    first_row = lines[header + 2].split()
    assert first_row[0] == str(sender_fd)  # sorted by unsent, largest first
    assert first_row[6] != "0"  # UNSENT


def test_json_lines(held_child):
    child, port, sender_fd = held_child
    result = CliRunner().invoke(cli, ["watch", str(child.pid), "--json", "--count", "2", "-i", "0.1"])
    assert result.exit_code == 0, result.output
    first, second = [json.loads(line) for line in result.output.splitlines()]
    assert first["pid"] == child.pid and first["send_bps"] is None  # honest first sample
    assert second["send_bps"] is not None and second["time"] > first["time"]
    sockets = {s["fd"]: s for s in second["sockets"]}
    sender = sockets[sender_fd]
    assert {"local", "remote", "state", "unacked", "unsent", "free", "sndbuf"} <= set(sender)
    assert sender["state"] == "ESTABLISHED" and sender["unsent"] > 0
    assert sender["send_queue"] == sender["unacked"] + sender["unsent"]
    assert sender["remote"] == f"127.0.0.1:{port}"
    listener = next(s for s in second["sockets"] if s["state"] == "LISTEN")
    assert listener["send_queue"] is None and listener["unsent"] is None


def test_state_and_port_filters(held_child):
    child, port, sender_fd = held_child
    runner = CliRunner()
    result = runner.invoke(cli, ["watch", str(child.pid), "--json", "--once", "--state", "listen"])
    assert [s["state"] for s in json.loads(result.output)["sockets"]] == ["LISTEN"]
    result = runner.invoke(cli, ["watch", str(child.pid), "--json", "--once", "--port", "1"])
    assert json.loads(result.output)["sockets"] == []
    result = runner.invoke(cli, ["watch", str(child.pid), "--json", "--once", "--port", str(port),
                                 "--state", "established"])
    assert len(json.loads(result.output)["sockets"]) == 2  # both ends of the connection
    result = runner.invoke(cli, ["watch", str(child.pid), "--state", "establishd"])
    assert result.exit_code == 2 and "not a TCP state" in result.output


@pytest.mark.parametrize("key", sorted(fields.SOCKET_SORTS))
def test_every_sort_key(held_child, key):
    child, _, _ = held_child
    result = CliRunner().invoke(cli, ["watch", str(child.pid), "--once", "--sort", key])
    assert result.exit_code == 0, result.output


def test_unknown_pid_is_one_line_and_status_1():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    result = run_cli("watch", str(child.pid), "--once")
    assert result.returncode == 1
    assert result.stderr == f"sockdiag: no process with pid {child.pid}\n"
    assert result.stdout == ""


@requires_root
def test_not_permitted_is_one_line_and_status_1():
    # nobody may not look at this (root) process.
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + CLI
        + ["watch", str(os.getpid()), "--once"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "root or as the same user" in result.stderr


def test_process_exit_while_watched_is_a_notice_and_status_0():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        result = run_cli("watch", str(child.pid), "-i", "0.1")
    finally:
        child.wait()
    assert result.returncode == 0
    assert result.stderr.startswith(f"sockdiag: process {child.pid} (")
    assert result.stderr.endswith(") exited\n") and result.stderr.count("\n") == 1


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=["ctrl-c", "sigterm", "sighup"])
def test_ctrl_c_sigterm_and_sighup_exit_cleanly(held_child, stop):
    child, _, _ = held_child
    watcher = subprocess.Popen(CLI + ["watch", str(child.pid), "-i", "0.1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=with_default_stop_signals)
    try:
        assert watcher.stdout.readline().startswith(f"pid {child.pid}")  # watching
        watcher.send_signal(stop)
        _, err = watcher.communicate(timeout=10)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.wait()
    assert watcher.returncode == 0, err
    assert err == ""


@requires_tmux
def test_live_view_in_a_terminal(held_child, tmp_path):
    """In a real (tmux) 80x24 terminal the view redraws in place and fits the screen."""
    child, _, sender_fd = held_child
    with Terminal("watch", str(child.pid), "-i", "0.2", width=80, height=24) as terminal:
        # The second sample is drawn: rates are known.
        screen = terminal.wait_until(lambda text: "acked" in text and "sent -" not in text)
    lines = screen.splitlines()
    assert lines[0].startswith(f"pid {child.pid}")
    assert screen.count("sockets (") == 1  # redrawn in place, not scrolled
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in screen
    row = next(line for line in lines if line.split()[:1] == [str(sender_fd)])
    assert "ESTAB" in row


def test_demo_runs_its_workload_and_cleans_up():
    result = run_cli("demo", "--duration", "2", "-i", "0.5", "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    samples = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(samples) == 4
    pid = samples[0]["pid"]
    last = samples[-1]["sockets"]
    assert sum(1 for s in last if s["state"] == "LISTEN") == 2
    assert sum(1 for s in last if s["state"] == "ESTABLISHED" and s["kind"] == "tcp") == 12
    assert max(s["unsent"] or 0 for s in last) > 1 << 20  # the bulk sender's backlog
    assert any(s["local"].startswith("[::1]") for s in last)
    assert not os.path.exists(f"/proc/{pid}"), "the workload must be gone after the demo"


# --- rendering, offline ----------------------------------------------------------

def make_socket(fd: int, unsent: int, bytes_acked: int = 0) -> SocketInfo:
    return SocketInfo(
        fd=fd, inode=1000 + fd, family="IPv4", local_address="10.0.0.1", local_port=5000 + fd,
        remote_address="10.0.0.2", remote_port=443, state="ESTABLISHED", send_queue=unsent + 10,
        unacked=10, unsent=unsent, free=1000, sndbuf=2000, recv_queue=0, queue_delay_s=0.5,
        congestion="cubic", tcp=TcpInfo(rtt_us=1500, bytes_acked=bytes_acked, bytes_sent=bytes_acked))


def test_render_cuts_to_height_and_width():
    sockets = tuple(make_socket(fd, unsent=fd * 100) for fd in range(3, 53))
    sample = _watch.ProcessSample(time=0.0, monotonic_s=1.0, pid=7, name="srv", sockets=sockets)
    screen = watch_view.render(sample, None, max_lines=20, max_width=80, extra_lines=["extra line"])
    lines = screen.splitlines()
    assert len(lines) <= 20
    assert lines[2] == "extra line"
    assert lines[-1].startswith("... ") and "more sockets" in lines[-1]
    assert all(len(line) <= 80 for line in lines)
    assert lines[6].split()[0] == "52"  # largest unsent first


def test_render_rates_need_two_samples():
    first = _watch.ProcessSample(0.0, 10.0, 7, "srv", (make_socket(3, 0, bytes_acked=1000),))
    second = _watch.ProcessSample(2.0, 12.0, 7, "srv", (make_socket(3, 0, bytes_acked=1000 + 4096),))
    assert _watch.rates(second, first) == _watch.SocketRates(2048, 2048, None)
    assert _watch.rates(first, None) is None
    assert "acked 2K/s" in watch_view.render(second, first)
    assert _watch.socket_rates(second, first) == {1003: _watch.SocketRates(2048, 2048, None)}


def test_formatting():
    assert [fields.format_bytes(n) for n in (None, 0, 1023, 1024, 1536, 3 << 20)] == \
        ["-", "0", "1023", "1K", "1.5K", "3M"]
    assert [fields.format_seconds(s) for s in (None, 0, 0.0004, 0.0125, 2.06)] == \
        ["-", "0", "400us", "12.5ms", "2.1s"]


def reference_json(sockets) -> str:
    """The JSON of the sockets by json.dumps, the oracle of _fast.json_objects."""
    def one(s):
        obj = {}
        for key, attribute, sub_attribute in fields.SOCKET_JSON_FIELDS:
            value = getattr(s, attribute)
            obj[key] = getattr(value, sub_attribute) if sub_attribute and value is not None else value
        return obj
    return json.dumps([one(s) for s in sockets], separators=(",", ":"), ensure_ascii=False)


def test_json_writer_matches_json_dumps(held_child):
    import sockdiag
    from sockdiag._fast import json_objects

    child, _, _ = held_child
    real = sockdiag.process_sockets(child.pid)
    odd = make_socket(3, 5).replace(congestion='c"u\\b\x01\n\tic\u00e9', tcp=None,
                                    queue_delay_s=1e-7, unsent=None)
    sockets = real + [odd, make_socket(4, 0)]
    assert json_objects(sockets, fields.SOCKET_JSON_FIELDS) == reference_json(sockets)
    assert json_objects([], fields.SOCKET_JSON_FIELDS) == "[]"
    with pytest.raises(TypeError, match="cannot write list as JSON"):
        json_objects([odd.replace(congestion=[])], fields.SOCKET_JSON_FIELDS)
    with pytest.raises(ValueError, match="no JSON form"):
        json_objects([odd.replace(queue_delay_s=float("nan"))], fields.SOCKET_JSON_FIELDS)


def test_demo_screen_explains_the_workload():
    result = CliRunner().invoke(cli, ["demo", "--duration", "1", "--interval", "0.3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[2].startswith("interfaces: ")
    assert lines[3].startswith("fds ") and "RLIMIT_NOFILE" in lines[3]
    assert lines[4].startswith("demo: fd ") and "UNSENT" in lines[4]
    assert "TCP_NOTSENT_LOWAT 128K" in lines[5]
    header = max(i for i, line in enumerate(lines) if line.startswith("FD "))  # the last screen
    bulk_fd, stalled_fd = lines[4].split()[2], lines[6].split()[1]
    # The two senders to slow readers hold the most unsent, a few KB apart.
    assert lines[header + 2].split()[0] in (bulk_fd, stalled_fd)


def test_demo_runs_from_a_source_checkout(tmp_path):
    """The README runs `sockdiag demo` in the repository, whose uncompiled
    sockdiag/ must not shadow the installed package in the workload child."""
    shadow = tmp_path / "sockdiag"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the source tree, not the installed package')\n")
    script = os.path.join(os.path.dirname(sys.executable), "sockdiag")
    result = subprocess.run([script, "demo", "--duration", "1", "--interval", "0.5"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "demo: fd " in result.stdout


def test_a_rate_the_kernel_cannot_give_is_unknown_not_zero():
    # bytes_sent came in Linux 4.19: an older kernel's samples have none.
    def look(at: float, acked: int) -> _watch.ProcessSample:
        sock = make_socket(3, unsent=100, bytes_acked=acked)
        sock = sock.replace(tcp=sock.tcp.replace(bytes_sent=None))
        return _watch.ProcessSample(time=at, monotonic_s=at, pid=7, name="srv", sockets=(sock,))

    before, after = look(1.0, 1000), look(2.0, 3000)
    [rates] = _watch.socket_rates(after, before).values()
    assert rates.send_bytes_per_s is None and rates.ack_bytes_per_s == 2000
    head = json.loads(watch_view.sample_json(after, before))
    assert head["send_bps"] is None and head["ack_bps"] == 16000
    assert "unacked 10  unsent 100  sent -  acked 2K/s" in watch_view.render(after, before)


def test_a_port_filter_says_how_many_sockets_the_process_holds(held_child):
    child, port, _ = held_child
    other = 1 if port != 1 else 2
    result = CliRunner().invoke(cli, ["watch", str(child.pid), "--once", "--port", str(other)])
    assert result.exit_code == 0, result.output
    assert "0 of its 3 sockets on the chosen ports: none" in result.output.splitlines()[0]
    result = CliRunner().invoke(cli, ["watch", str(child.pid), "--once", "--port", str(port)])
    assert "3 sockets (3 TCP): 2 ESTABLISHED, 1 LISTEN" in result.output.splitlines()[0]


def test_a_rate_the_kernel_lacks_is_absent_in_the_header(tcp_pair):
    """Before Linux 4.19 tcp_info has no bytes_sent: the header's sent rate is "-",
    and the acked rate (4.1) is still shown."""
    from testsupport.loopback import streaming

    client, server = tcp_pair
    with streaming(client, server):
        out = subprocess.run(CLI + ["watch", str(os.getpid()), "-n", "2", "-i", "0.3",
                                    "--port", str(server.getsockname()[1])],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "SOCKDIAG_ASSUME_KERNEL": "4.18"})
    assert out.returncode == 0, out.stderr
    rates = [line for line in out.stdout.splitlines() if line.startswith("unacked ")][-1].split()
    assert rates[rates.index("sent") + 1] == "-", rates
    acked = rates[rates.index("acked") + 1]
    assert acked.endswith("/s") and acked != "0/s", rates
