"""`sockdiag export`: real Prometheus scrapes, exposition parsing, processes
that come and go, bounded cardinality and memory, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import select
import socket
import subprocess
import sys
import textwrap
import tracemalloc
import urllib.request

import pytest
from hypothesis import given
from hypothesis import strategies as st

prometheus_client = pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

import sockdiag  # noqa: E402
from sockdiag import export, exposition, web  # noqa: E402
from sockdiag._common import SocketInfo  # noqa: E402
from sockdiag import _validate  # noqa: E402
from sockdiag.cli import cli  # noqa: E402
from sockdiag.cli.export import export as export_command  # noqa: E402

from conftest import connected_pair, fill, requires_linux, wait_until  # noqa: E402
from prometheus_server import PROMETHEUS, free_port, prometheus_server  # noqa: E402
from testsupport.exposition import both_texts  # noqa: E402
from test_interfaces import proc_net_dev  # noqa: E402
from unprivileged import run_unprivileged  # noqa: E402

pytestmark = requires_linux

requires_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="needs Debian's prometheus package (apt-get install prometheus)"
)

EXPORTER = [sys.executable, "-c", "from sockdiag.cli import main; main()", "export"]


# --- helpers -----------------------------------------------------------------


def scrape(url: str) -> dict[str, list]:
    """{family name: [samples]} of one GET of an exporter's /metrics."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return parse(response.read().decode())


def parse(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def value(families: dict, sample_name: str, **labels) -> float:
    """The one sample named sample_name whose labels include labels."""
    family = sample_name.removesuffix("_total")
    found = [s.value for s in families.get(family, families.get(sample_name, []))
             if s.name == sample_name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (sample_name, labels, found)
    return found[0]


def pid_values(families: dict, name: str) -> dict[str, float]:
    return {s.labels["pid"]: s.value for s in families.get(name, [])}


@contextlib.contextmanager
def run_exporter(*args: str):
    """`sockdiag export --listen 127.0.0.1:0 ARGS` in a subprocess; yields its /metrics URL."""
    process = subprocess.Popen(
        [*EXPORTER, "--listen", "127.0.0.1:0", *args], stderr=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([process.stderr], [], [], 20)
        line = process.stderr.readline() if ready else ""
        match = re.search(r"serving (http://\S+/metrics)", line)
        assert match, f"exporter did not start: {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stderr.close()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EXPORTER, *args], capture_output=True, text=True, timeout=30)


def info(state: str, fd: int = 3, unacked=0, unsent=0, free=1000, recv_queue=0,
         delay=0.0, remote_port: int = 80) -> SocketInfo:
    """A synthetic SocketInfo (for the aggregation alone, not the kernel)."""
    send_queue = None if unacked is None or unsent is None else unacked + unsent
    return SocketInfo(
        fd=fd, inode=1000 + fd, family="IPv4", local_address="127.0.0.1", local_port=5000 + fd,
        remote_address="127.0.0.1", remote_port=remote_port, state=state, send_queue=send_queue,
        unacked=unacked, unsent=unsent, free=free, sndbuf=4096, recv_queue=recv_queue,
        queue_delay_s=delay, congestion="cubic", tcp=None,
    )


CHILD = textwrap.dedent("""
    import ctypes, socket, sys
    ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0)  # PR_SET_NAME
    conn = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
    print("ready", flush=True)
    sys.stdin.read()
""")


@contextlib.contextmanager
def named_children(name: str, count: int):
    """count processes named name, each holding one loopback connection; yields them."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listener.getsockname()[1]
    children = []
    try:
        for _ in range(count):
            child = subprocess.Popen([sys.executable, "-c", CHILD, name, str(port)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            children.append(child)
            assert child.stdout.readline() == "ready\n"
        yield children
    finally:
        for child in children:
            child.kill()
            child.wait()
            child.stdin.close()
            child.stdout.close()
        listener.close()


@pytest.fixture
def unsent_pair():
    """A loopback connection whose client holds unsent bytes (nobody reads)."""
    client, server = connected_pair()
    fill(client)
    yield client, server
    client.close()
    server.close()


# --- Prometheus scrapes the exporter ------------------------------------------


@requires_prometheus
def test_prometheus_scrapes_unsent_bytes_of_a_held_connection(tmp_path, unsent_pair):
    client, _ = unsent_pair
    pid = str(os.getpid())
    with run_exporter("--pid", pid, "--per-socket") as url, \
            prometheus_server(tmp_path, [url.split("/")[2]]) as prom:
        unsent_now = sockdiag.send_buffer(client).unsent
        assert unsent_now > 100_000

        def scraped_unsent():
            result = prom.query(f'sockdiag_process_unsent_bytes{{pid="{pid}"}}')
            return result and result[0][1]

        scraped = wait_until(scraped_unsent, timeout=30, step=0.5)
        # The peer never reads: unsent stays put, bar the last window's worth.
        assert scraped == pytest.approx(unsent_now, rel=0.05)
        assert prom.query('up{job="sockdiag"}')[0][1] == 1
        established = prom.query(
            f'sockdiag_process_sockets{{pid="{pid}",state="ESTABLISHED"}}')[0][1]
        assert established >= 2  # both ends of the pair live in this process
        # The delay histogram is usable as Prometheus histograms are.
        quantile = prom.query(
            f'histogram_quantile(0.99, sockdiag_process_queue_delay_seconds_bucket{{pid="{pid}"}})')
        assert quantile and quantile[0][1] >= 0
        lo_bytes = prom.query('sockdiag_interface_receive_bytes_total{interface="lo"}')
        assert lo_bytes and lo_bytes[0][1] > 0
        # docs/export.md's Grafana queries answer on this server.
        docs = (pathlib.Path(__file__).parent.parent / "docs" / "export.md").read_text()
        queries = re.search(r"```promql\n(.*?)```", docs, re.S).group(1).splitlines()
        queries = [q.replace('"eth0"', '"lo"') for q in queries if q and not q.startswith("#")]
        assert len(queries) == 4
        for promql in queries:
            wait_until(lambda: prom.query(promql), timeout=15, step=0.5)


# --- the exposition ----------------------------------------------------------


# Names a process can give itself (prctl) that label values must escape.
ESCAPED_NAMES = ('say "hi"', "back\\slash", "new\nline")


def test_text_format_is_generate_latest_byte_for_byte(unsent_pair):
    with contextlib.ExitStack() as stack:
        children = [child for name in ESCAPED_NAMES
                    for child in stack.enter_context(named_children(name, 1))]
        collector = export.Collector([os.getpid()] + [child.pid for child in children],
                                     per_socket=True)
        fast, reference = both_texts(export.registry(collector).collect())
    assert fast == reference
    text = fast.decode()
    assert 'process="say \\"hi\\""' in text and 'process="back\\\\slash"' in text
    assert 'process="new\\nline"' in text
    assert "sockdiag_socket_unsent_bytes{" in text and "_gcount{" in text


def test_text_format_writes_numbers_as_generate_latest(unsent_pair):
    # Values the kernel seldom gives but a family may hold: huge, infinite, not a number.
    read = [("1", "p", [info("ESTABLISHED", unacked=2**70, unsent=10**7, delay=float("inf")),
                        info("ESTABLISHED", fd=4, unacked=-5, unsent=2**64 - 1, delay=float("nan")),
                        info("LISTEN", fd=5, recv_queue=999_999)], {"udp": 2**70}),
            ("2", "nul\0in a name", [info("ESTABLISHED", unacked=1, unsent=2, delay=0.5)], {})]
    families = export.process_families(read) + export.socket_families(read, 100)[0]
    odd = prometheus_client.core.GaugeMetricFamily("sockdiag_odd", "a \\ and a\nnewline", labels=("b", "a"))
    for value in (float("nan"), float("-inf"), 1e-9, 1234567.0, -1234567, 10**6, -(10**6), True, 0.1):
        odd.add_metric(("x", str(value)), value)
    fast, reference = both_texts(families + [odd])
    assert fast == reference
    assert b" NaN\n" in fast and b" +Inf\n" in fast and b"e+21\n" in fast



def test_exposition_parses_and_matches_the_kernel(unsent_pair):
    client, _ = unsent_pair
    pid = str(os.getpid())
    collector = export.Collector([os.getpid()])
    dev_before = proc_net_dev()
    families = parse(exposition.scrape(collector).decode())
    dev_after = proc_net_dev()

    unsent = sockdiag.send_buffer(client).unsent
    assert value(families, "sockdiag_process_unsent_bytes", pid=pid) == pytest.approx(unsent, rel=0.05)
    held = value(families, "sockdiag_process_send_queue_bytes", pid=pid)
    assert held >= unsent
    assert value(families, "sockdiag_process_sockets", pid=pid, state="ESTABLISHED") >= 2
    assert value(families, "sockdiag_watched_processes") == 1
    assert value(families, "sockdiag_scrape_errors_total", source="process") == 0
    assert 0 < value(families, "sockdiag_scrape_duration_seconds") < 10
    assert "process_resident_memory_bytes" in families  # the exporter's own footprint

    # Interface counters between two readings of /proc/net/dev around the
    # scrape (other programs move them); exact in a namespace of the test's
    # own: test_interfaces.py, test_rx_and_tx_drops_are_the_kernels.
    for field, metric, _help in export.INTERFACE_COUNTERS:
        scraped = value(families, metric + "_total", interface="lo")
        assert dev_before["lo"][field] <= scraped <= dev_after["lo"][field], field
    types = {f.name: f.type for f in text_string_to_metric_families(exposition.scrape(collector).decode())}
    assert types["sockdiag_interface_receive_bytes"] == "counter"
    assert types["sockdiag_process_unsent_bytes"] == "gauge"
    assert types["sockdiag_process_queue_delay_seconds"] == "histogram"


def test_listen_backlog_is_not_in_byte_totals():
    # A listener with three connections waiting to be accepted.
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(3)]
    try:
        pid = str(os.getpid())

        def families_with_backlog():
            fams = parse(exposition.scrape(export.Collector([os.getpid()])).decode())
            return fams if value(fams, "sockdiag_process_accept_queue_connections", pid=pid) == 3 else None

        families = wait_until(families_with_backlog)
        assert value(families, "sockdiag_process_sockets", pid=pid, state="LISTEN") == 1
        # Clients' queues are empty and nobody else here holds bytes: a
        # backlog counted as bytes would show as 3 (or the limit, 8).
        assert value(families, "sockdiag_process_receive_queue_bytes", pid=pid) == 0
        assert value(families, "sockdiag_process_send_queue_bytes", pid=pid) == 0
    finally:
        for c in clients:
            c.close()
        listener.close()


# --- aggregation, on synthetic structs -----------------------------------------


def test_sums_skip_listen_and_unknown_values():
    sockets = [
        info("LISTEN", fd=3, unacked=None, unsent=None, free=None, recv_queue=5, delay=None),
        info("ESTABLISHED", fd=4, unacked=100, unsent=1000, free=50, recv_queue=7, delay=0.003),
        info("ESTABLISHED", fd=5, unacked=10, unsent=0, free=70, recv_queue=0, delay=0.0),
        info("CLOSE_WAIT", fd=6, unacked=1, unsent=2, free=3, recv_queue=4, delay=20.0),
    ]
    families = {f.name: f.samples for f in export.process_families([("42", "srv", sockets, {})])}
    one = {s.name: s.value for fam in families.values() for s in fam
           if "state" not in s.labels and "le" not in s.labels}
    assert one["sockdiag_process_unacked_bytes"] == 111
    assert one["sockdiag_process_unsent_bytes"] == 1002
    assert one["sockdiag_process_send_queue_bytes"] == 1113
    assert one["sockdiag_process_send_buffer_free_bytes"] == 123
    assert one["sockdiag_process_receive_queue_bytes"] == 11
    assert one["sockdiag_process_accept_queue_connections"] == 5
    assert one["sockdiag_process_queue_delay_seconds_gcount"] == 3
    assert one["sockdiag_process_queue_delay_seconds_gsum"] == pytest.approx(20.003)
    by_state = {s.labels["state"]: s.value for s in families["sockdiag_process_sockets"]}
    assert by_state["ESTABLISHED"] == 2 and by_state["LISTEN"] == 1 and by_state["SYN_SENT"] == 0
    buckets = {s.labels["le"]: s.value for s in families["sockdiag_process_queue_delay_seconds"]
               if s.name.endswith("_bucket")}
    assert buckets["0.0001"] == 1 and buckets["0.0025"] == 1 and buckets["0.005"] == 2
    assert buckets["10.0"] == 2 and buckets["+Inf"] == 3


def test_unknown_values_are_left_out_not_zero():
    # macOS cannot split the send queue from outside the process.
    sockets = [info("ESTABLISHED", unacked=None, unsent=None, delay=None)]
    names = {s.name for f in export.process_families([("7", "x", sockets, {})]) for s in f.samples}
    assert "sockdiag_process_unacked_bytes" not in names
    assert "sockdiag_process_queue_delay_seconds_bucket" not in names
    assert "sockdiag_process_send_buffer_free_bytes" in names
    # No connection at all: the sums are a true zero.
    names = {s.name: s.value for f in export.process_families([("7", "x", [], {})]) for s in f.samples}
    assert names["sockdiag_process_unacked_bytes"] == 0


def test_per_socket_series_are_capped_biggest_first():
    sockets = [info("ESTABLISHED", fd=fd, unacked=fd, unsent=fd * 1000) for fd in range(10, 30)]
    sockets.append(info("LISTEN", fd=5, unacked=None, unsent=None, free=None))
    per_socket = 6  # unacked, unsent, send_queue, free, recv_queue, delay
    families, dropped = export.socket_families([("1", "srv", sockets, {})], max_series=3 * per_socket + 5)
    exported = [s for f in families for s in f.samples]
    assert len(exported) == 3 * per_socket
    assert dropped == 20 * per_socket - len(exported)
    assert {s.labels["fd"] for s in exported} == {"29", "28", "27"}
    assert len({tuple(sorted(s.labels.items())) + (s.name,) for s in exported}) == len(exported)
    # Across processes the biggest win, wherever they are.
    small = [info("ESTABLISHED", fd=fd, unacked=1, unsent=fd) for fd in range(3, 9)]
    families, _ = export.socket_families([("2", "a", small, {}), ("1", "srv", sockets, {})], per_socket * 2)
    assert {(s.labels["pid"], s.labels["fd"]) for f in families for s in f.samples} == {
        ("1", "29"), ("1", "28")}
    families, dropped = export.socket_families([("1", "srv", sockets, {})], max_series=0)
    assert not any(f.samples for f in families) and dropped == 20 * per_socket


def test_dropped_series_counter_adds_up_over_scrapes(unsent_pair):
    collector = export.Collector([os.getpid()], per_socket=True, max_series=1)
    first = value(parse(exposition.scrape(collector).decode()),
                  "sockdiag_socket_series_dropped_total")
    families = parse(exposition.scrape(collector).decode())
    second = value(families, "sockdiag_socket_series_dropped_total")
    assert first > 0 and second >= 2 * first - 10  # this process's sockets, twice
    exported = [s for name, samples in families.items() if name.startswith("sockdiag_socket_")
                and name != "sockdiag_socket_series_dropped" for s in samples]
    assert len(exported) <= 1


# --- processes that come and go -------------------------------------------------


def test_process_name_is_resolved_at_each_scrape():
    name = f"sdexp{os.getpid() % 100000}"
    with named_children(name, 3) as children:
        collector = export.Collector(process_names=[name])
        families = parse(exposition.scrape(collector).decode())
        assert value(families, "sockdiag_watched_processes") == 3
        established = pid_values(families, "sockdiag_process_send_queue_bytes")
        assert set(established) == {str(c.pid) for c in children}
        assert {s.labels["process"] for s in families["sockdiag_process_sockets"]} == {name}

        gone = children[0]
        gone.kill()
        gone.wait()
        families = parse(exposition.scrape(collector).decode())
        assert value(families, "sockdiag_watched_processes") == 2
        assert str(gone.pid) not in pid_values(families, "sockdiag_process_send_queue_bytes")
        assert value(families, "sockdiag_scrape_errors_total", source="process") == 0

    # Started after the collector: found at the next scrape.
    with named_children(name, 1) as late:
        families = parse(exposition.scrape(collector).decode())
        assert set(pid_values(families, "sockdiag_process_send_queue_bytes")) == {str(late[0].pid)}


def test_watched_pid_that_exits_is_dropped_not_an_error():
    with named_children("sdexp-pid", 2) as children:
        with run_exporter(*[a for c in children for a in ("--pid", str(c.pid))]) as url:
            families = scrape(url)
            assert set(pid_values(families, "sockdiag_process_unsent_bytes")) == {
                str(c.pid) for c in children}
            children[1].kill()
            children[1].wait()
            for _ in range(5):  # scrapes while it is gone
                families = scrape(url)
            assert set(pid_values(families, "sockdiag_process_unsent_bytes")) == {str(children[0].pid)}
            assert value(families, "sockdiag_scrape_errors_total", source="process") == 0


# --- memory and bad input ------------------------------------------------------------


def test_memory_stays_flat_over_many_scrapes(unsent_pair):
    collector = export.Collector([os.getpid()], per_socket=True, max_series=50)
    registry = export.registry(collector)
    for _ in range(20):  # warm caches (interned strings, first-use allocations)
        exposition.text_format(registry.collect())
    tracemalloc.start()
    try:
        baseline = tracemalloc.take_snapshot()
        for _ in range(300):
            exposition.text_format(registry.collect())
        grown = sum(stat.size_diff for stat in
                    tracemalloc.take_snapshot().compare_to(baseline, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes more after 300 scrapes"


def test_default_listen_is_loopback_only():
    option = next(p for p in cli.get_command(None, "export").params if p.name == "listen")
    assert option.default == "127.0.0.1:9977"


@pytest.mark.parametrize("address", ["9977", ":9977", "localhost", "127.0.0.1:http",
                                     "127.0.0.1:99999", "[::1]", ""])
def test_bad_listen_address_is_a_one_line_usage_error(address):
    result = run_cli("--listen", address)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "listen address" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line_exit_1():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_cli("--listen", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr == f"sockdiag: cannot listen on 127.0.0.1:{port}: Address already in use\n"


def test_unknown_pid_at_start_is_one_line_exit_1():
    with open("/proc/sys/kernel/pid_max") as f:
        absent = int(f.read()) + 1
    result = run_cli("--pid", str(absent), "--listen", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert result.stderr == f"sockdiag: no process with pid {absent}\n"


def test_ipv6_listen_serves_metrics():
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    collector = export.Collector()
    server, _ = web.serve(collector, "::1", 0)
    try:
        families = scrape(f"http://[::1]:{server.server_port}/metrics")
        assert "sockdiag_interface_receive_bytes" in families
    finally:
        server.shutdown()
        server.server_close()


def test_listen_is_parsed_once_by_its_option():
    """The command gets (host, port) from --listen, not the text to parse again."""
    for text, parsed in [("0.0.0.0:9977", ("0.0.0.0", 9977)), ("[::]:1", ("::", 1)),
                         ("host.example:0", ("host.example", 0))]:
        with export_command.make_context("export", ["--listen", text]) as ctx:
            assert ctx.params["listen"] == parsed
    with export_command.make_context("export", []) as ctx:
        assert ctx.params["listen"] == ("127.0.0.1", 9977)


@given(st.text())
def test_listen_address_accepts_or_refuses_cleanly(address):
    try:
        host, port = _validate.listen_address(address)
    except ValueError as err:
        assert "\n" not in str(err)
    else:
        assert host and 0 <= port <= 65535


def test_once_prints_one_scrape():
    result = run_cli("--once", "--pid", str(os.getpid()))
    assert result.returncode == 0, result.stderr
    families = parse(result.stdout)
    assert value(families, "sockdiag_watched_processes") == 1


def test_once_json_gives_the_series_of_the_text(unsent_pair):
    text = run_cli("--once", "--pid", str(os.getpid()))
    as_json = run_cli("--once", "--json", "--pid", str(os.getpid()))
    assert text.returncode == as_json.returncode == 0, as_json.stderr
    series = [json.loads(line) for line in as_json.stdout.splitlines()]
    names = {s["name"] for s in series}
    assert names == {s.name for family in parse(text.stdout).values() for s in family}
    unsent = [s for s in series if s["name"] == "sockdiag_process_unsent_bytes"]
    assert len(unsent) == 1 and unsent[0]["labels"]["pid"] == str(os.getpid()) and unsent[0]["value"] > 0


def test_once_with_a_missing_web_config_is_one_line_exit_1(tmp_path):
    result = run_cli("--once", "--web-config", str(tmp_path / "missing.yml"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("sockdiag: web config ") and result.stderr.count("\n") == 1


def test_process_not_allowed_at_start_is_one_line_exit_1():
    # pid 1 belongs to root: nobody (or a non-root test run) may not read its fds.
    args = ("-c", "from sockdiag.cli import main; main()", "export", "--pid", "1",
            "--listen", f"127.0.0.1:{free_port()}")
    result = run_unprivileged(*args) if os.geteuid() == 0 else subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith("sockdiag: not allowed to inspect pid 1")
    assert result.stderr.count("\n") == 1


def test_process_not_allowed_at_a_scrape_is_counted_not_fatal():
    # Matched by name at scrape time but unreadable: an error counted, the scrape still served.
    init_name = open("/proc/1/comm").read().strip()
    code = ("from sockdiag.cli import main; main()", "export", "--once", "--process-name", init_name)
    result = run_unprivileged("-c", *code) if os.geteuid() == 0 else subprocess.run(
        [sys.executable, "-c", *code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    families = parse(result.stdout)
    assert value(families, "sockdiag_scrape_errors_total", source="process") >= 1
    assert "1" not in pid_values(families, "sockdiag_process_unsent_bytes")
    assert "sockdiag_interface_receive_bytes" in families
