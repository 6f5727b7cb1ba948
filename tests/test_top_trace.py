"""Short client connections go to their process: the connect tracer under `sockdiag top`.

Each scenario runs in a network namespace of its own (only its traffic is
accounted); the tracer is global to the machine, so its instance and its
removal are checked in tracefs itself.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import socket
import struct
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiag import _fast, reference, tracing
from sockdiag._common import TCP_STATES

import traffic_workload as workload
from conftest import requires_root
from testsupport.children import with_default_stop_signals
from testsupport.loopback import wait_until
from testsupport.terminal import Terminal, requires_tmux
from testsupport.top_workload import (IN_NEW_NETNS, SOCKDIAG, check_attribution, run_top_workload,
                                      trace_instances)

requires_unshare = pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None,
                                      reason="needs unshare (util-linux) and ip (iproute2)")


@requires_root
@requires_unshare
def test_short_client_connections_belong_to_the_client():
    """200 connections in about two seconds, 100,000 bytes each (the issue's case)."""
    result = run_top_workload(200, 100, 100_000)
    check_attribution(result, 200, 100_000)


@requires_root
@requires_unshare
def test_accountant_scenario_with_tracing():
    out = subprocess.run([*IN_NEW_NETNS, sys.executable, os.path.abspath(workload.__file__),
                          "scenario"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    accounted = result["accounted"]
    assert accounted["connects_traced"]
    client = accounted["totals"][str(result["client_pid"])]
    upload = workload.SHORT * workload.SHORT_BYTES + workload.LONG * workload.LONG_BYTES
    assert client["sent"] >= 0.99 * upload
    unattributed = accounted["totals"].get("None", {"sent": 0})
    assert client["sent"] + unattributed["sent"] == upload


def start_top() -> subprocess.Popen:
    top = subprocess.Popen([*SOCKDIAG, "top", "--json", "--interval", "0.2"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=with_default_stop_signals)
    assert top.stdout.readline(), top.stderr.read()
    assert f"{tracing.INSTANCE_PREFIX}{top.pid}" in trace_instances()
    return top


@requires_root
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_ctrl_c_sigterm_and_sighup_remove_the_trace_instance(signum):
    top = start_top()
    top.send_signal(signum)
    _, err = top.communicate(timeout=20)
    assert top.returncode == 0 and "Traceback" not in err
    assert f"{tracing.INSTANCE_PREFIX}{top.pid}" not in trace_instances()


@requires_root
@requires_tmux
def test_closing_the_terminal_removes_the_trace_instance():
    """A live top whose terminal window is closed (SIGHUP, then EIO on the
    terminal) removes its instance as Ctrl-C does."""
    before = trace_instances()
    with Terminal("top", "-i", "0.2", width=100, height=30) as terminal:
        terminal.wait_for("pid")
        made = wait_until(lambda: trace_instances() - before, timeout=15)
        terminal.hang_up()
        wait_until(lambda: not (trace_instances() & made), timeout=15)


@requires_root
def test_the_next_run_removes_what_a_killed_one_left():
    top = start_top()
    top.kill()
    top.wait()
    top.stdout.close()
    top.stderr.close()
    left = f"{tracing.INSTANCE_PREFIX}{top.pid}"
    assert left in trace_instances()
    out = subprocess.run([*SOCKDIAG, "top", "--once", "--json", "--interval", "0.1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert left not in trace_instances()


def test_without_root_the_note_says_what_cannot_be_attributed():
    from unprivileged import run_unprivileged

    out = run_unprivileged(
        "-c", "from sockdiag.accounting import TrafficAccountant, coverage_notes\n"
              "with TrafficAccountant() as a:\n"
              "    print('\\n'.join(coverage_notes(a.sample())))\n").stdout
    assert "client connections that close within one sample cannot be attributed" in out
    assert "needs root" in out


FORMAT = """name: inet_sock_set_state
ID: 2287
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:const void * skaddr;\toffset:8;\tsize:8;\tsigned:0;
\tfield:int oldstate;\toffset:16;\tsize:4;\tsigned:1;
\tfield:int newstate;\toffset:20;\tsize:4;\tsigned:1;
\tfield:__u16 sport;\toffset:24;\tsize:2;\tsigned:0;
\tfield:__u16 dport;\toffset:26;\tsize:2;\tsigned:0;
\tfield:__u16 family;\toffset:28;\tsize:2;\tsigned:0;
\tfield:__u16 protocol;\toffset:30;\tsize:2;\tsigned:0;
\tfield:__u8 saddr[4];\toffset:32;\tsize:4;\tsigned:0;
\tfield:__u8 daddr[4];\toffset:36;\tsize:4;\tsigned:0;
\tfield:__u8 saddr_v6[16];\toffset:40;\tsize:16;\tsigned:0;
\tfield:__u8 daddr_v6[16];\toffset:56;\tsize:16;\tsigned:0;
"""
LAYOUT = tracing.event_layout(FORMAT)
DECODERS = [pytest.param(_fast.trace_page_events, id="cython"),
            pytest.param(reference.trace_page_events, id="reference")]


def record(tid, skaddr, old, new, sport, dport=80, event_id=2287) -> bytes:
    """One event record as the kernel writes it (72 bytes, 6.18's layout)."""
    head = struct.pack("<HBBiQiiHHHH", event_id, 0, 0, tid, skaddr, old, new, sport, dport, 2, 6)
    return head + socket.inet_aton("127.0.0.1") * 2 + bytes(16) + b"\x20" * 16


def page(*records: bytes, extend: int = 0) -> bytes:
    body = b""
    if extend:
        body += struct.pack("<II", 30 | ((extend & ((1 << 27) - 1)) << 5), extend >> 27)
    for i, data in enumerate(records):
        if i % 2:  # type_len 0: the length in the next word, which it counts
            body += struct.pack("<II", 0 | (10 << 5), len(data) + 4) + data
        else:
            body += struct.pack("<I", (len(data) // 4) | (10 << 5)) + data
    return struct.pack("<Qq", 1000, len(body)) + body + bytes(64)


@pytest.mark.parametrize("decode", DECODERS)
def test_ring_buffer_pages_are_decoded(decode):
    events = decode(page(record(41, 0xAB, 7, 2, 0), record(41, 0xAB, 2, 1, 50000),
                         record(41, 0xAC, 7, 2, 0, event_id=9), extend=1 << 30), LAYOUT, 2287)
    assert [e[1:7] for e in events] == [(41, 0xAB, 7, 2, 0, 80), (41, 0xAB, 2, 1, 50000, 80)]
    assert events[0][0] == 1000 + (1 << 30) + 10 and events[1][0] == events[0][0] + 10
    assert events[0][8] == int.from_bytes(socket.inet_aton("127.0.0.1"), "little")
    assert events[0][10] == bytes(16) and events[0][11] == b"\x20" * 16


@pytest.mark.parametrize("decode", DECODERS)
def test_a_truncated_page_yields_the_whole_events_only(decode):
    whole = page(record(1, 2, 7, 2, 0), record(1, 2, 2, 1, 4000))
    assert len(decode(whole, LAYOUT, 2287)) == 2
    assert len(decode(whole[:16 + 4 + 72 + 40], LAYOUT, 2287)) == 1


@settings(max_examples=300)
@given(st.binary(max_size=700), st.integers(0, (1 << 64) - 1), st.integers(0, 2000))
def test_the_cython_decoder_equals_the_reference_on_any_page(garbage, commit, cut):
    data = struct.pack("<QQ", 7, commit) + garbage
    for candidate in (data, data[:cut], page(record(3, 4, 7, 2, 0)) + garbage):
        assert _fast.trace_page_events(candidate, LAYOUT, 2287) == \
            reference.trace_page_events(candidate, LAYOUT, 2287)


@given(st.lists(st.tuples(st.integers(0, (1 << 31) - 1), st.integers(0, 1 << 62), st.integers(1, 12),
                          st.integers(1, 12), st.integers(0, 65535)), max_size=40))
def test_the_decoders_agree_on_well_formed_pages(rows):
    built = page(*(record(*row) for row in rows))
    expected = reference.trace_page_events(built, LAYOUT, 2287)
    assert _fast.trace_page_events(built, LAYOUT, 2287) == expected
    assert len(expected) == len(rows)


def test_a_format_without_the_fields_is_refused():
    with pytest.raises(ValueError, match="skaddr"):
        tracing.event_layout(FORMAT.replace("skaddr", "sk"))


def test_a_bad_layout_is_a_value_error():
    with pytest.raises(ValueError):
        _fast.trace_page_events(page(), (), 2287)
    with pytest.raises(ValueError):
        _fast.trace_page_events(page(), ((0, 2), (1 << 20, 4)), 2287)


# --- pages captured from real kernels (tools/capture_trace_page.py) ---------------

CAPTURES = sorted(p for p in (pathlib.Path(__file__).parent / "data" / "trace").iterdir() if p.is_dir())
_TEXT_EVENT = re.compile(
    r"-(\d+)\s+\(\s*\d+\)\s+\[\d+\]\s+\S+\s+(\d+)\.(\d{6}): inet_sock_set_state: family=(\w+) "
    r"protocol=IPPROTO_TCP sport=(\d+) dport=(\d+) saddr=([\d.]+) daddr=([\d.]+) "
    r"saddrv6=(\S+) daddrv6=(\S+) oldstate=TCP_(\w+) newstate=TCP_(\w+)$")
_FAMILIES = {"AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6}


def kernel_text_events(text: str) -> list[tuple]:
    """The kernel's own text of the captured events, as the decoders' tuples
    (bar skaddr, which the text hashes): the oracle."""
    events = []
    for line in text.splitlines():
        match = _TEXT_EVENT.search(line)
        if match is None:
            assert line.startswith("#"), line
            continue
        tid, seconds, micros, family, sport, dport, saddr, daddr, saddr6, daddr6, old, new = \
            match.groups()
        events.append((int(seconds) * 1_000_000 + int(micros), int(tid),
                       TCP_STATES.index(old), TCP_STATES.index(new), int(sport), int(dport),
                       _FAMILIES[family],
                       int.from_bytes(socket.inet_aton(saddr), "little"),
                       int.from_bytes(socket.inet_aton(daddr), "little"),
                       socket.inet_pton(socket.AF_INET6, saddr6),
                       socket.inet_pton(socket.AF_INET6, daddr6)))
    return events


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("capture", CAPTURES, ids=[c.name for c in CAPTURES])
def test_pages_captured_from_a_real_kernel_decode_as_its_own_text(capture, decode):
    meta = json.loads((capture / "capture.json").read_text())
    layout = tracing.event_layout((capture / "format").read_text())
    event_id = int((capture / "id").read_text())
    raw = (capture / "page.bin").read_bytes()
    size = meta["page_bytes"]
    decoded = [event for at in range(0, len(raw), size)
               for event in decode(raw[at:at + size], layout, event_id)]
    expected = kernel_text_events((capture / "trace.txt").read_text())
    assert len(raw) > size and len(expected) >= 40  # events on more than one page
    # The text shows microseconds, rounded; the page holds nanoseconds.
    assert [((stamp + 500) // 1000, tid, *fields) for stamp, tid, _skaddr, *fields in decoded] \
        == expected
    # What the tracer relies on: a connect's skaddr is that of its socket's next event.
    connects = [i for i, e in enumerate(decoded) if (e[3], e[4]) == (7, 2)]
    assert len(connects) == 6
    for i in connects:
        following = next(e for e in decoded[i + 1:] if e[3] == 2)  # out of SYN_SENT
        assert following[2] == decoded[i][2] != 0 and following[1] == decoded[i][1]


@requires_root
def test_a_start_interrupted_after_the_tracer_leaves_no_instance(monkeypatch):
    """Ctrl-C or SIGTERM during the baseline dump (raised there as KeyboardInterrupt) removes
    the trace instance made just before, as it does during the samples."""
    from sockdiag import accounting

    instance = f"{tracing.INSTANCE_PREFIX}{os.getpid()}"
    seen = []

    def interrupted_dump(self, baseline=False):
        seen.append(instance in trace_instances())
        raise KeyboardInterrupt

    monkeypatch.setattr(accounting.TrafficAccountant, "_dump", interrupted_dump)
    with pytest.raises(KeyboardInterrupt):
        accounting.TrafficAccountant(trace_connects=True)
    assert seen == [True]
    assert instance not in trace_instances()


SHORT_LIVED = textwrap.dedent("""
    import ctypes, json, os, socket, subprocess, sys, time
    top = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)  # top's tracer and baseline are in place
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    clients = []
    for _ in range(10):
        pid = os.fork()
        if pid == 0:  # a client named sdshort that connects, sends, and is gone
            ctypes.CDLL(None).prctl(15, b"sdshort", 0, 0, 0)  # PR_SET_NAME: its comm
            with socket.create_connection(listener.getsockname()) as conn:
                conn.sendall(b"x" * 1000)
            os._exit(0)
        os.waitpid(pid, 0)
        clients.append(pid)
        conn, _ = listener.accept()
        while conn.recv(1 << 16):
            pass
        conn.close()
    time.sleep(2.5)  # two more samples
    top.send_signal(2)
    lines = top.communicate(timeout=30)[0].splitlines()
    print(json.dumps({"clients": clients, "samples": [json.loads(line) for line in lines]}))
""")


@requires_root
@requires_unshare
def test_a_client_gone_before_the_sample_keeps_its_name():
    """Its /proc entry is gone by the sample: the name is the one the kernel kept at its connect."""
    out = subprocess.run([*IN_NEW_NETNS, sys.executable, "-c", SHORT_LIVED, *SOCKDIAG, "top", "--interval", "1",
                          "--json"], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    rows = [row for sample in result["samples"] for row in sample["processes"] if row["pid"] in result["clients"]]
    assert {row["pid"] for row in rows} == set(result["clients"])
    assert {row["name"] for row in rows} == {"sdshort"}
    assert sum(row["sent_bytes"] for row in rows) == 10 * 1000


@requires_root
def test_a_tracer_interrupted_while_it_sets_up_leaves_no_instance(monkeypatch):
    """Ctrl-C or SIGTERM (raised there as KeyboardInterrupt) between the instance's
    mkdir and its first event removes the instance."""
    instance = f"{tracing.INSTANCE_PREFIX}{os.getpid()}"
    seen = []

    def interrupted_write(self, name, value):
        seen.append(instance in trace_instances())
        raise KeyboardInterrupt

    monkeypatch.setattr(tracing.ConnectTracer, "_write", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        tracing.ConnectTracer()
    assert seen == [True]
    assert instance not in trace_instances()
