"""Every series `sockdiag export` writes, against the kernel's own numbers.

A child holds connections of known, settled state and reports, for each of
its sockets, what the kernel says in that process (SIOCOUTQ, SIOCOUTQNSD,
SIOCINQ, SO_MEMINFO, TCP_INFO); ss -tmi says it again from outside.  One
scrape is taken between two equal reports, so the numbers are the same
moment's.  Each series and label is compared with them: swapping two series,
or the local and remote labels, fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("prometheus_client")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from sockdiag import export, exposition, reference  # noqa: E402

from conftest import requires_linux, requires_ss  # noqa: E402
from testsupport.held_sockets import HeldSockets  # noqa: E402

pytestmark = [requires_linux, requires_ss]

_SKMEM = re.compile(r"skmem:\(r\d+,rb\d+,t\d+,tb(\d+),f\d+,w(\d+),")
_NOTSENT = re.compile(r"\bnotsent:(\d+)")


def ss_numbers() -> dict[tuple[str, str], dict[str, int]]:
    """{(local, remote): Send-Q, Recv-Q, notsent, free} of every TCP connection, from ss -tmi."""
    out = subprocess.run(["ss", "-tmiHn", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    found = {}
    # One line per socket, its details on the next lines (indented).
    for entry in re.split(r"\n(?=\S)", out.strip()):
        head, _, detail = entry.partition("\n")
        recv_q, send_q, local, remote = head.split()[:4]
        skmem = _SKMEM.search(detail)
        if skmem is None:
            continue  # gone between the dump and its details
        tb, w = map(int, skmem.groups())
        notsent = _NOTSENT.search(detail)
        found[local, remote] = {"send_q": int(send_q), "recv_q": int(recv_q),
                                "notsent": int(notsent.group(1)) if notsent else 0,
                                "free": max(tb - w, 0)}
    return found


def series(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def socket_value(families: dict, name: str, labels: dict) -> float:
    found = [s.value for s in families[name] if s.labels == labels]
    assert len(found) == 1, (name, labels, [s.labels for s in families[name]])
    return found[0]


def process_value(families: dict, name: str, pid: int) -> float:
    (found,) = [s.value for s in families[name] if s.name == name and s.labels["pid"] == str(pid)]
    return found


@pytest.fixture(params=["ipv4", "ipv6"])
def held(request):
    holder = HeldSockets(request.param)
    yield holder.start()
    holder.close()


def test_every_per_socket_series_and_label_is_the_kernels(held):
    # A collector per attempt: each scrape is a first look (the one-look
    # rules of docs/queue-delay.md; the drain across scrapes is test_queue_delay's).
    report, (text, ss) = held.settled(lambda: (
        exposition.scrape(export.Collector([held.pid], per_socket=True)).decode(), ss_numbers()))
    families = series(text)
    name = open(f"/proc/{held.pid}/comm").read().strip()
    filled = report[0]
    assert filled["outq_unsent"] > 100_000 and report[2]["inq"] == 3000 and report[3]["inq"] == 500
    for kernel in report:
        labels = {"pid": str(held.pid), "process": name, "fd": str(kernel["fd"]),
                  "local": kernel["local"], "remote": kernel["remote"]}
        seen = ss[kernel["local"], kernel["remote"]]
        unsent, queued = kernel["outq_unsent"], kernel["outq"]
        assert unsent == kernel["tcpi_notsent"] == seen["notsent"]
        assert queued == seen["send_q"] and kernel["inq"] == seen["recv_q"]
        free = max(kernel["sndbuf"] - kernel["wmem_queued"], 0)
        assert free == seen["free"]
        expected = {
            "sockdiag_socket_unacked_bytes": queued - unsent,
            "sockdiag_socket_unsent_bytes": unsent,
            "sockdiag_socket_send_queue_bytes": queued,
            "sockdiag_socket_send_buffer_free_bytes": free,
            "sockdiag_socket_receive_queue_bytes": kernel["inq"],
        }
        for metric, value in expected.items():
            assert socket_value(families, metric, labels) == value, (metric, kernel)
        # Queue delay, one look (docs/queue-delay.md): 0 with nothing unsent;
        # none while the peer's window is full (it stopped reading).
        tcp = reference.tcp_info_linux(bytes.fromhex(kernel["tcp_info"]))
        window_full = tcp.probes > 0 or tcp.snd_wnd < queued - unsent + tcp.snd_mss
        delays = [s.value for s in families["sockdiag_socket_queue_delay_seconds"] if s.labels == labels]
        if unsent == 0:
            assert delays == [0.0], kernel
        else:
            assert window_full and delays == [], (kernel, tcp)


def test_process_sums_are_the_kernels_sums(held):
    report, text = held.settled(lambda: exposition.scrape(export.Collector([held.pid])).decode())
    families = series(text)
    expected = {
        "sockdiag_process_unacked_bytes": sum(k["outq"] - k["outq_unsent"] for k in report),
        "sockdiag_process_unsent_bytes": sum(k["outq_unsent"] for k in report),
        "sockdiag_process_send_queue_bytes": sum(k["outq"] for k in report),
        "sockdiag_process_send_buffer_free_bytes":
            sum(max(k["sndbuf"] - k["wmem_queued"], 0) for k in report),
        "sockdiag_process_receive_queue_bytes": sum(k["inq"] for k in report),
    }
    assert expected["sockdiag_process_unsent_bytes"] > 100_000
    for metric, value in expected.items():
        assert process_value(families, metric, held.pid) == value, metric
    states = {s.labels["state"]: s.value for s in families["sockdiag_process_sockets"]
              if s.labels["pid"] == str(held.pid)}
    assert (states["ESTABLISHED"], states["LISTEN"]) == (4, 1)
    assert process_value(families, "sockdiag_process_accept_queue_connections", held.pid) == 0
    # The delays known: 0 for each socket with nothing unsent; none for the
    # filled one, whose peer stopped reading (the test above).
    idle = sum(k["outq_unsent"] == 0 for k in report)
    assert process_value(families, "sockdiag_process_queue_delay_seconds_gcount", held.pid) == idle == 3
    assert process_value(families, "sockdiag_process_queue_delay_seconds_gsum", held.pid) == 0


def test_process_unsent_is_the_kernels_in_the_cli_scrape(held):
    """`sockdiag export --once`, the command users run, against the same reports."""
    command = [sys.executable, "-c", "from sockdiag.cli import main; main()",
               "export", "--once", "--pid", str(held.pid), "--per-socket"]
    report, done = held.settled(lambda: subprocess.run(command, capture_output=True, text=True, timeout=30))
    assert done.returncode == 0, done.stderr
    families = series(done.stdout)
    assert process_value(families, "sockdiag_process_unsent_bytes", held.pid) == \
        sum(k["outq_unsent"] for k in report) > 100_000
