"""Per-process TCP accounting and `sockdiag top`, against workloads of known size."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sockdiag
from sockdiag import accounting
from sockdiag._common import ProcessTraffic, TrafficSample
from sockdiag.cli import cli
from sockdiag.fields import format_bytes

import traffic_workload as workload
from testsupport.children import closing_sender, with_default_stop_signals
from testsupport.terminal import Terminal, requires_tmux
from conftest import connected_pair, drain, requires_root, wait_until
from testsupport.loopback import streaming
from unprivileged import unprivileged_python

WORKLOAD = os.path.abspath(workload.__file__)
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]
requires_unshare = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                                      reason="needs unshare (util-linux) and ip (iproute2)")


def run_scenario(*flags: str) -> dict:
    """The workload and its accounting in a new network namespace (nobody else's traffic)."""
    out = subprocess.run(
        ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
         sys.executable, WORKLOAD, "scenario", *flags],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def within_1_percent(accounted: int, expected: int) -> bool:
    return abs(accounted - expected) <= expected / 100


EXPECTED_UPLOAD = workload.SHORT * workload.SHORT_BYTES + workload.LONG * workload.LONG_BYTES
EXPECTED_REPLIES = (workload.SHORT + workload.LONG) * workload.REPLY_BYTES


@requires_root
@requires_unshare
def test_short_and_long_connections_are_all_counted():
    result = run_scenario("--no-trace")
    # The workload's own count is the truth.
    assert result["server"] == {"received": EXPECTED_UPLOAD, "sent": EXPECTED_REPLIES}
    assert result["client"] == {"sent": EXPECTED_UPLOAD, "received": EXPECTED_REPLIES}
    accounted = result["accounted"]
    assert accounted["closed_sockets_counted"]
    assert accounted["missed_sockets"] == 0 and accounted["notification_overflows"] == 0
    totals = accounted["totals"]
    server, client = totals[str(result["server_pid"])], totals[str(result["client_pid"])]
    unattributed = totals.get("None", {"sent": 0, "received": 0})
    # The server: every connection, short ones through its listening port.
    assert within_1_percent(server["received"], EXPECTED_UPLOAD)
    assert within_1_percent(server["sent"], EXPECTED_REPLIES)
    # The client: its long connections were dumped while open and closed
    # before the last sample; the short ones opened and closed between two
    # samples cannot be tied to it and are reported as unattributed.
    assert client["sent"] >= workload.LONG * workload.LONG_BYTES
    assert unattributed["sent"] > EXPECTED_UPLOAD / 2, "most short connections lived between samples"
    assert within_1_percent(client["sent"] + unattributed["sent"], EXPECTED_UPLOAD)
    assert within_1_percent(client["received"] + unattributed["received"], EXPECTED_REPLIES)
    assert set(totals) <= {str(result["server_pid"]), str(result["client_pid"]), "None"}


@requires_root
@requires_unshare
def test_without_destroy_notifications_the_missing_part_is_reported():
    accounted = run_scenario("--no-closed-sockets", "--no-trace")["accounted"]
    assert not accounted["closed_sockets_counted"]
    assert any("connections opened and closed between two samples are missed" in note
               for note in accounted["notes"])
    # The long connections were seen, then left without final counters.
    assert accounted["missed_sockets"] >= workload.LONG
    seen = sum(row["received"] for row in accounted["totals"].values())
    assert seen < EXPECTED_UPLOAD


@requires_unshare
def test_unreadable_processes_are_counted_as_unattributed():
    python = unprivileged_python()  # skips unless root
    result = run_scenario("--children-as-nobody", python, "--no-trace")
    accounted = result["accounted"]
    assert accounted["unreadable_processes"] >= 2
    assert any("could not be read" in note for note in accounted["notes"])
    unattributed = accounted["totals"]["None"]
    # Both ends of every connection, nothing dropped.
    assert within_1_percent(unattributed["sent"], EXPECTED_UPLOAD + EXPECTED_REPLIES)
    assert str(result["server_pid"]) not in accounted["totals"]


def sent_by(sample, pid: int) -> tuple[int, int]:
    """(interval, total) bytes sent less retransmissions by pid in a sample; (0, None) without its row."""
    row = next((r for r in sample.processes if r.pid == pid), None)
    if row is None:
        return 0, None
    return row.sent_bytes - row.retrans_bytes, row.total_sent_bytes - row.total_retrans_bytes


def test_a_closed_socket_is_counted_once_and_stays_counted():
    with closing_sender() as (child, close):
        with accounting.TrafficAccountant(pids=[child.pid]) as accountant:
            (row,) = accountant.sample().processes
            assert (row.pid, row.connections, row.total_sent_bytes) == (child.pid, 1, 0)
            close()

            def close_counted():
                # The socket outlives the fd (FIN_WAIT) in the dumps; then the
                # kernel frees it and notifies its final counters.
                rows = [r for r in accountant.sample().processes if r.pid == child.pid]
                return rows and rows[0].closed and rows[0]

            row = wait_until(close_counted, timeout=10, step=0.05)
            assert (row.closed, row.total_sent_bytes - row.total_retrans_bytes) == (1, 30000)
            # The samples after the close was counted: nothing new, the total stays.
            for _ in range(4):
                time.sleep(0.1)
                interval, total = sent_by(accountant.sample(), child.pid)
                assert interval == 0 and total in (None, 30000), (interval, total)


def test_process_traffic_counts_a_socket_closed_in_its_interval():
    with closing_sender() as (child, close):
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            sampling = pool.submit(sockdiag.process_traffic, 1.5, [child.pid])
            time.sleep(0.3)  # its baseline is taken
            close()
            sample = sampling.result(timeout=10)
    (row,) = sample.processes
    assert row.sent_bytes - row.retrans_bytes == 30000 and row.closed == 1


def test_top_counts_a_closed_socket_once():
    with closing_sender() as (child, close):
        top = subprocess.Popen([*SOCKDIAG, "top", "--json", "--interval", "0.2", "--count", "12"],
                               stdout=subprocess.PIPE, text=True)
        try:
            samples = [json.loads(top.stdout.readline())]
            close()
            samples += [json.loads(line) for line in top.stdout]
        finally:
            top.wait(timeout=30)
            top.stdout.close()
    rows = [row for sample in samples for row in sample["processes"] if row["pid"] == child.pid]
    sent = [row["sent_bytes"] - row["retrans_bytes"] for row in rows]
    # Counted at the close, once: 30000 in one sample (possibly split over two), none after.
    assert sum(sent) == 30000, sent
    assert sum(row["closed"] for row in rows) == 1, rows


def test_rates_are_bytes_over_the_interval(tcp_pair):
    client, server = tcp_pair
    with accounting.TrafficAccountant(pids=[os.getpid()]) as accountant:
        client.sendall(b"x" * 500_000)
        drain(server, 500_000)
        sample = wait_until(lambda: next(
            (s for s in [accountant.sample()] if s.processes and s.processes[0].sent_bytes), None))
    (row,) = sample.processes
    assert row.pid == os.getpid() and row.connections == 2
    # sent counts retransmissions (spurious ones happen on a loaded loopback).
    assert row.sent_bytes - row.retrans_bytes == row.received_bytes == 500_000
    assert row.received_bytes_per_s == pytest.approx(500_000 / sample.interval_s)
    assert row.sent_bytes_per_s == pytest.approx(row.sent_bytes / sample.interval_s)
    assert row.name == open(f"/proc/{os.getpid()}/comm").read().strip()


def _disconnect(sock):
    """connect() to AF_UNSPEC: the kernel disconnects the socket (tcp_disconnect,
    which zeroes its byte counters) and keeps it, cookie and inode, to connect again."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    unspecified = bytes(16)  # struct sockaddr, sa_family AF_UNSPEC
    assert libc.connect(sock.fileno(), unspecified, len(unspecified)) == 0, os.strerror(ctypes.get_errno())


def _no_negative_counts(sample):
    for row in sample.processes:
        values = [getattr(row, name) for name in ProcessTraffic._fields[2:]]
        assert all(v is None or v >= 0 for v in values), row


def test_an_abortive_close_is_missed_never_negative(tcp_pair):
    """close() with SO_LINGER 0 zeroes the socket's counters before the kernel
    frees it: its destroy notification says 0 bytes sent."""
    from testsupport.queue_delay import kernel_tcp_info

    client, server = tcp_pair
    with accounting.TrafficAccountant(pids=[os.getpid()]) as accountant:
        client.sendall(b"x" * 200_000)
        drain(server, 200_000)
        sent = kernel_tcp_info(client).bytes_sent + kernel_tcp_info(server).bytes_sent
        (row,) = wait_until(lambda: [r for r in [accountant.sample()] if r.processes][0].processes)
        assert row.total_sent_bytes == sent >= 200_000
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        samples = []

        def closed():
            samples.append(accountant.sample())
            return any(r.closed for r in samples[-1].processes) or samples[-1].missed_sockets

        wait_until(closed, timeout=10, step=0.05)
    for sample in samples:
        _no_negative_counts(sample)
    assert sum(sample.missed_sockets for sample in samples) >= 1
    # What was counted before the abort stays counted; nothing more is invented.
    totals = [r.total_sent_bytes for sample in samples for r in sample.processes]
    assert all(total == sent for total in totals), totals


def test_a_reconnected_socket_counts_from_its_reset(tcp_pair):
    """A socket disconnected and connected again keeps its cookie and inode,
    but its counters restart from 0."""
    from testsupport.queue_delay import kernel_tcp_info

    client, server = tcp_pair
    other = socket.socket(client.family)
    other.bind((client.getsockname()[0], 0))
    other.listen()
    with other, accounting.TrafficAccountant(pids=[os.getpid()]) as accountant:
        client.sendall(b"x" * 300_000)
        drain(server, 300_000)
        wait_until(lambda: [s for s in [accountant.sample()] if s.processes])
        _disconnect(client)
        client.connect(other.getsockname()[:2])
        accepted, _ = other.accept()
        with accepted:
            client.sendall(b"y" * 1000)
            drain(accepted, 1000)
            reset = accountant.sample()
            _no_negative_counts(reset)
            assert reset.missed_sockets == 1  # what it sent since the last sample is unknown
            # Counted from the reset on, as the kernel counts.
            client.sendall(b"z" * 70_000)
            drain(accepted, 70_000)
            expected = kernel_tcp_info(client).bytes_sent - 1000 + kernel_tcp_info(accepted).bytes_sent
            after = accountant.sample()
    _no_negative_counts(after)
    (row,) = after.processes
    assert row.sent_bytes == expected >= 70_000 and after.missed_sockets == 0


def _proc_net_udp(inode: int) -> tuple[int, int]:
    """(receive queue, drops) of a UDP socket, from /proc/net/udp."""
    for line in open("/proc/net/udp").readlines()[1:]:
        fields = line.split()
        if int(fields[9]) == inode:
            return int(fields[4].split(":")[1], 16), int(fields[12])
    raise LookupError(inode)


def _detail_pairs(text: str) -> dict[str, str]:
    """The "name value" lines of a one-column detail view."""
    return dict(line.rsplit(" ", 1) for line in text.splitlines()[2:] if " " in line)


def test_detail_and_json_show_udp_fields_as_the_table_does():
    """A full UDP receive buffer: its fill is a percent, its drops a count
    (powers of 1000), in the detail view as in the table; the JSON has the
    values; both as /proc/net/udp and SO_RCVBUF say."""
    from sockdiag.fields import format_count
    from sockdiag.views import top as top_view

    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender, accounting.TrafficAccountant(pids=[os.getpid()]) as accountant:
        receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        receiver.bind(("127.0.0.1", 0))
        for _ in range(2000):
            sender.sendto(b"x" * 200, receiver.getsockname())
        queued, drops = _proc_net_udp(os.fstat(receiver.fileno()).st_ino)
        fill = min(queued / receiver.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF), 1.0)
        sample = accountant.sample()
    assert drops > 1000
    (row,) = [r for r in sample.processes if r.pid == os.getpid()]
    assert (row.udp_drops, row.udp_receive_fill) == (drops, pytest.approx(fill))
    shown = _detail_pairs(top_view.detail(sample.processes, str(os.getpid()), [], 60, 30))
    assert shown["UDP RQ"] == f"{fill:.0%}" == top_view.render(sample, [row]).split()[-3]
    assert shown["UDP DROPS/s"] == format_count(drops / sample.interval_s) != format_bytes(
        drops / sample.interval_s)
    assert shown["udp_drops"] == str(drops)
    document = json.loads(top_view.sample_json(sample, [row]))
    (ours,) = document["processes"]
    assert set(ours) == set(ProcessTraffic._fields)
    assert (ours["udp_drops"], ours["udp_receive_fill"]) == (drops, pytest.approx(fill))
    assert ours["udp_drops_per_s"] == pytest.approx(drops / sample.interval_s)


def _row(pid, sent, received, connections=1, name="x"):
    return ProcessTraffic(pid, name, connections, 0, sent, sent, received, 0, sent, sent, received, 0,
                          sent, sent, received, 0)


def _sample(rows):
    return TrafficSample(time=0.0, interval_s=1.0, processes=tuple(rows), closed_sockets_counted=True,
                         missed_sockets=0, notification_overflows=0, unreadable_processes=2,
                         connects_traced=True, connects_untraced_reason=None, trace_overruns=0,
                         running_as_root=True)


def test_notes_speak_of_the_unattributed_row_only_when_it_is_shown():
    [note] = accounting.coverage_notes(_sample([_row(1, 10, 0)]))
    assert note.endswith("unattributed traffic: none in this sample")
    [note] = accounting.coverage_notes(_sample([_row(1, 10, 0), _row(None, 5, 5)]))
    assert note.endswith("unattributed traffic: in the row with PID -")


def test_a_cgroup_table_has_no_pid_column():
    from sockdiag.views import top as top_view

    rows = [_row(None, 10, 0, name="system.slice/nginx.service")]
    header = top_view.render(_sample(rows), rows, noun="cgroups").splitlines()[3].split()
    assert header[:2] == ["NAME", "CONNS"]
    header = top_view.render(_sample(rows), rows).splitlines()[3].split()
    assert header[:2] == ["PID", "NAME"]


def test_sort_orders():
    rows = [_row(1, 10, 0, name="b"), _row(2, 0, 50, connections=3, name="a"), _row(None, 30, 30)]
    assert [r.pid for r in accounting.sort_traffic(rows)] == [None, 2, 1]
    assert [r.pid for r in accounting.sort_traffic(rows, "sent")] == [None, 1, 2]
    assert [r.pid for r in accounting.sort_traffic(rows, "connections")][0] == 2
    assert [r.pid for r in accounting.sort_traffic(rows, "pid")] == [None, 1, 2]
    assert [r.name for r in accounting.sort_traffic(rows, "name")] == ["a", "b", "x"]
    with pytest.raises(ValueError):
        accounting.sort_traffic(rows, "bogus")


def test_coverage_notes_are_empty_when_nothing_is_missed():
    sample = TrafficSample(0.0, 1.0, (), True, 0, 0, 0, True, None, 0, True)
    assert accounting.coverage_notes(sample) == []
    assert len(accounting.coverage_notes(
        TrafficSample(0.0, 1.0, (), False, 2, 1, 3, False, "needs root", 5, False))) == 6


# --- the command -------------------------------------------------------------


def test_top_json_lines(tcp_pair):
    client, server = tcp_pair
    client.sendall(b"x" * 1000)
    drain(server, 1000)
    result = CliRunner().invoke(cli, ["top", "--json", "--count", "2", "--interval", "0.1"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 2
    for sample in lines:
        assert {"time", "interval_s", "processes", "notes", "closed_sockets_counted"} <= sample.keys()
        assert 0.05 < sample["interval_s"] < 5  # 0.1 s unless a sample takes longer
    ours = [p for p in lines[0]["processes"] if p["pid"] == os.getpid()]
    assert ours and ours[0]["connections"] >= 2


def test_top_table_once(tcp_pair):
    result = CliRunner().invoke(cli, ["top", "--once", "--interval", "0.05", "--sort", "pid"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("sockdiag top  ")
    assert "PID" in result.output and "SENT/s" in result.output


def test_a_counter_the_kernel_lacks_is_absent_in_the_header_too(tcp_pair):
    """Before Linux 4.19 tcp_info has no bytes_sent: every SENT/s cell and the
    header's sent rate are "-", never a sum of unknowns shown as 0."""
    client, server = tcp_pair
    with streaming(client, server):
        out = subprocess.run([*SOCKDIAG, "top", "--once", "--interval", "0.5", "--sort", "pid"],
                             capture_output=True, text=True, timeout=60,
                             env={**os.environ, "SOCKDIAG_ASSUME_KERNEL": "4.18"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    header = lines[0].split()
    assert header[header.index("sent") + 1] == "-", lines[0]
    assert header[header.index("received") + 1].endswith("/s"), lines[0]
    table = lines[lines.index("") + 1:]
    columns = table[0].split()
    sent_at, received_at = columns.index("SENT/s"), columns.index("RECV/s")
    rows = [line.split() for line in table[2:] if not line.startswith("...")]
    ours = [cells for cells in rows if cells[0] == str(os.getpid())]
    assert ours and ours[0][received_at] != "-", table
    assert all(cells[sent_at] == "-" for cells in rows), table  # the columns before are one word each


def test_top_bad_sort_is_one_line_and_status_2():
    result = subprocess.run([sys.executable, "-c", "from sockdiag.cli import main; main()",
                             "top", "--sort", "bogus"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Invalid value for '--sort'" in result.stderr


@requires_tmux
def test_live_view_in_a_terminal():
    """In a real (tmux) 80x24 terminal top redraws in place and fits the screen."""
    client, server = connected_pair()
    with Terminal("top", "-i", "0.2", width=80, height=24) as terminal:
        def our_row_drawn_twice():
            client.sendall(b"x" * 100_000)
            drain(server, 100_000)
            text = terminal.screen()
            rows = [line for line in text.splitlines() if line.split()[:1] == [str(os.getpid())]]
            return rows and rows[0].split()[-1] != "0" and text

        try:
            screen = wait_until(our_row_drawn_twice, timeout=15, step=0.2)
        finally:
            client.close()
            server.close()
    lines = screen.splitlines()
    assert lines[0].startswith("sockdiag top")
    assert screen.count("sockdiag top") == 1  # redrawn in place, not scrolled
    assert all(len(line) <= 80 for line in lines)
    assert "\x1b" not in screen
    header = next(line for line in lines if line.split()[:1] == ["PID"])
    # 80 columns: the least needed columns made room (ACKED/s and CLOSED first).
    assert header.split()[:5] == ["PID", "NAME", "CONNS", "SENT/s", "RECV/s"] and "STALLED" in header


def test_public_names_by_platform():
    import sockdiag

    from sockdiag._common import LINUX

    for name in ("process_traffic", "TrafficAccountant", "ByteBudget"):
        assert hasattr(sockdiag, name) == LINUX and (name in sockdiag.__all__) == LINUX
    for name in ("fd_headroom", "FdHeadroom", "ProcessTraffic", "TrafficSample", "TcpDestroyEvent",
                 "BudgetExceeded"):
        assert hasattr(sockdiag, name) and name in sockdiag.__all__


def test_ctrl_c_exits_cleanly():
    top = subprocess.Popen([sys.executable, "-c", "from sockdiag.cli import main; main()", "top", "-i", "0.1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=with_default_stop_signals)
    try:
        assert top.stdout.readline().startswith("sockdiag top")  # sampling
        top.send_signal(signal.SIGINT)
        _, err = top.communicate(timeout=10)
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
    assert top.returncode == 0, err
    assert err == ""


def test_top_takes_the_short_sort_option_as_watch_does():
    done = CliRunner().invoke(cli, ["top", "--once", "--json", "-i", "0.1", "-s", "name",
                                    "--no-trace-connects"])
    assert done.exit_code == 0, done.output
    names = [row["name"] or "" for row in json.loads(done.output)["processes"]]
    assert names == sorted(names)


def test_the_page_shows_the_table_and_the_sort_keys_the_code_has():
    from sockdiag.fields import TRAFFIC_SORTS
    from sockdiag.views import top as top_view

    page = (Path(__file__).resolve().parents[1] / "docs" / "top.md").read_text()
    (listed,) = re.findall(r"^sockdiag top --sort \S+ +# (.+)$", page, re.M)
    assert tuple(listed.split(", ")) == TRAFFIC_SORTS
    (header,) = re.findall(r"^ +PID NAME .+$", page, re.M)
    assert re.split(r" +", header.strip()) == " ".join(top_view.COLUMNS).split()
