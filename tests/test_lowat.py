"""`sockdiag bench lowat`: parsers, decoders, argument errors, cleanup, and real runs.

The real runs are short (1-3 s per setting) and bounded; the shaped ones
need root and make their own namespaces (prefix sdlowat-), which the tests
check are gone afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sockdiag import _validate, stats
from sockdiag.lowat import report, timestamps, topology, units
from sockdiag.lowat.sweep import LowatResult

from conftest import IS_ROOT, connected_pair, requires_linux, requires_root, wait_until
from testsupport.loopback import SIOCOUTQNSD, ioctl_int
from testsupport.netns_ping import ping_ms

pytestmark = requires_linux

CLI = [sys.executable, "-c", "from sockdiag.cli import main; main()", "bench", "lowat"]
# Short runs: long enough for the buffer to fill and the sender to settle.
TINY = ["--repeat", "1", "--duration", "2.5", "--warmup", "1", "--json"]
RESULT_KEYS = {
    "rate_bps", "lowat", "lowat_p50_bytes", "lowat_updates_per_mb", "lowat_changes_per_mb", "cc", "sndbuf", "throughput_bps", "latency_p50_ms", "latency_p99_ms",
    "sched_p50_ms", "cpu_s", "ctx_switches", "send_calls_per_mb", "eagains_per_mb",
    "wakeups_per_mb", "unsent_p50_bytes", "unacked_p50_bytes", "sock_mem_p50_bytes",
}


def run_cli(args, timeout=60, user=None):
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    return subprocess.run(prefix + CLI + args, capture_output=True, text=True, timeout=timeout,
                          cwd="/")


def namespaces_of(pid):
    return [name for name in topology._namespace_names()
            if name.startswith(f"{topology.PREFIX}-{pid}-")]


@pytest.fixture
def no_leftovers():
    """Whatever a failing test leaves behind (of runs that are gone) is removed."""
    yield
    if IS_ROOT:
        topology.remove_leftovers()


# --- parsers -------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1", 1), ("4096", 4096), ("16k", 16384), ("16K", 16384), ("1m", 1 << 20), ("2g", 2 << 30),
    ("1.5k", 1536), ("16 kb", 16384), ("16kib", 16384),  # sockdiag's one size grammar
])
def test_parse_size(text, expected):
    assert _validate.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "k", "16kk", "-1", "0x10", "1e3", "9" * 400])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        _validate.parse_size(text)


def test_parse_lowat():
    assert units.parse_lowat("off") is None
    assert units.parse_lowat("16k") == 16384
    for bad in ("0", "2g", "on", "0ms", "20s", "20 ms", "-5ms"):
        with pytest.raises(ValueError):
            units.parse_lowat(bad)


@pytest.mark.parametrize("text, canonical, ms", [
    ("20ms", "20ms", 20.0), ("20MS", "20ms", 20.0), ("0.02s", "20ms", 20.0),
    ("1.5ms", "1.5ms", 1.5), ("500us", "0.5ms", 0.5),
])
def test_parse_lowat_time_target(text, canonical, ms):
    """A time target is kept as its shortest "<n>ms" string: what --json shows."""
    assert units.parse_lowat(text) == canonical
    assert units.lowat_target_ms(canonical) == ms
    assert _validate.format_size(canonical) == canonical
    assert units.lowat_target_ms(16384) is None and units.lowat_target_ms(None) is None


def test_parse_rate_and_duration():
    assert units.parse_rate("10mbit") == 10_000_000
    assert units.parse_rate("1.5gbit") == 1_500_000_000
    assert units.parse_duration_us("50ms") == 50_000
    assert units.parse_duration_us("0") == 0
    for bad in ("10mbps", "10", "fast", "0bit"):
        with pytest.raises(ValueError):
            units.parse_rate(bad)
    for bad in ("50", "ms", "-1ms", "1h"):
        with pytest.raises(ValueError):
            units.parse_duration_us(bad)


@given(st.text(max_size=12))
def test_parsers_raise_only_value_error(text):
    for parse in (_validate.parse_size, units.parse_lowat, units.parse_sndbuf,
                  units.parse_rate, units.parse_duration_us):
        try:
            parse(text)
        except ValueError:
            pass


@pytest.mark.parametrize("nbytes", [None, 1, 1000, 4096, 16384, 1 << 20, 3 << 30])
def test_format_size_round_trips(nbytes):
    text = _validate.format_size(nbytes)
    assert (None if text == "off" else _validate.parse_size(text)) == nbytes


# --- statistics -----------------------------------------------------------------


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert stats.percentile(values, 0.5) == 50
    assert stats.percentile(values, 0.99) == 99
    assert stats.percentile([7], 0.99) == 7
    assert stats.percentile([], 0.5) is None


def test_goodput_slope_ignores_where_bursts_fall():
    # 1000 bytes per ms, delivered in bursts of 50 ms after a loss is repaired;
    # one burst lands just inside the window's end.
    times = list(range(0, 1000))
    delivered = [(t // 50) * 50_000 for t in times] + [1_050_000]
    times.append(999)
    assert stats.slope(times, delivered) == pytest.approx(1000, rel=0.01)
    # The two ends alone would say 5% more.
    assert (delivered[-1] - delivered[0]) / (times[-1] - times[0]) > 1040
    assert stats.slope([1], [5]) is None
    assert stats.slope([2, 2], [1, 5]) is None


# --- SO_TIMESTAMPING decoding --------------------------------------------------


def _stamp_cmsgs(event, offset, seconds=1_700_000_000, nanoseconds=5):
    stamp = struct.pack("@llllll", seconds, nanoseconds, 0, 0, 0, 0)
    origin = timestamps.SO_EE_ORIGIN_TIMESTAMPING
    error = struct.pack("@IBBBBII", 42, origin, 0, 0, 0, event, offset)
    return [(socket.SOL_SOCKET, timestamps.SCM_TIMESTAMPING, stamp), (socket.IPPROTO_IP, 11, error)]


def test_decode_errqueue():
    stamp = timestamps.decode_errqueue(_stamp_cmsgs(timestamps.SCM_TSTAMP_ACK, 4095))
    assert stamp == timestamps.TxTimestamp("ack", 4095, 1_700_000_000_000_000_005)
    assert timestamps.decode_errqueue([]) is None


def test_decode_errqueue_rejects_truncated():
    cmsgs = _stamp_cmsgs(timestamps.SCM_TSTAMP_SCHED, 1)
    with pytest.raises(ValueError):
        timestamps.decode_errqueue([cmsgs[0][:2] + (cmsgs[0][2][:20],), cmsgs[1]])
    with pytest.raises(ValueError):
        timestamps.decode_errqueue([cmsgs[0], cmsgs[1][:2] + (cmsgs[1][2][:15],)])


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 41, 6]), st.sampled_from([11, 25, 37, 3]),
                          st.binary(max_size=64)), max_size=4))
def test_decode_errqueue_on_garbage(ancdata):
    try:
        stamp = timestamps.decode_errqueue(ancdata)
    except ValueError:
        return
    assert stamp is None or stamp.event in ("snd", "sched", "ack")


def test_timestamps_of_a_real_loopback_write():
    client, server = connected_pair()
    timestamps.enable(client)
    before = time.clock_gettime_ns(time.CLOCK_REALTIME)
    client.sendmsg([b"x" * 1000], timestamps.write_cmsg(), socket.MSG_EOR)
    server.recv(1000)
    events = {}

    def read():
        try:
            _, ancdata, _, _ = client.recvmsg(1, timestamps.ANCILLARY_BUFSIZE,
                                              socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return "sched" in events and "ack" in events
        stamp = timestamps.decode_errqueue(ancdata)
        events[stamp.event] = stamp
        return "sched" in events and "ack" in events

    try:
        wait_until(read)
    finally:
        client.close()
        server.close()
    assert events["sched"].byte_offset == events["ack"].byte_offset == 999
    assert before <= events["sched"].realtime_ns <= events["ack"].realtime_ns


# --- recommendation ------------------------------------------------------------


def _result(lowat, bps, p50, rate_bps=10_000_000):
    fields = dict.fromkeys(LowatResult._fields)
    fields.update(rate_bps=rate_bps, lowat=lowat, cc="bbr", sndbuf=None, writer="eagain", flows=1, repeats=1,
                  throughput_bps=bps, latency_p50_ms=p50, latency_p99_ms=p50 * 2)
    return LowatResult(**fields)


def test_recommendation_keeps_goodput_within_two_percent():
    results = [_result(None, 9.6e6, 600.0), _result(16384, 9.45e6, 45.0),
               _result(4096, 9.0e6, 20.0)]
    [chosen] = report.recommend(results)
    # 4k is faster but loses 6% goodput; 16k loses 1.6%.
    assert chosen.lowat == 16384
    assert chosen.latency_vs_off == pytest.approx(600 / 45)
    assert "at 10 Mbit/s: lowat 16k" in report.recommendation_lines([chosen])[0]


def test_one_recommendation_per_rate():
    results = [_result(None, 1.9e6, 900.0, 2_000_000), _result("20ms", 1.9e6, 40.0, 2_000_000),
               _result(None, 48e6, 400.0, 50_000_000), _result("20ms", 47.9e6, 30.0, 50_000_000)]
    chosen = report.recommend(results)
    assert [(r.rate_bps, r.lowat) for r in chosen] == [(2_000_000, "20ms"), (50_000_000, "20ms")]
    assert chosen[0].best_throughput_bps == 1.9e6  # not the other rate's best


def test_no_recommendation_without_data():
    assert report.recommend([_result(None, 0.0, 1.0)]) == []
    assert report.recommendation_lines([]) == ["recommendation: none (no run delivered data)"]


# --- argument errors -----------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (["--lowat", "16kk"], "--lowat"),
    (["--lowat", "0"], "--lowat"),
    (["--lowat", "-4k"], "--lowat"),
    (["--sndbuf", "lots"], "--sndbuf"),
    (["--message-size", "16kk"], "--message-size"),
    (["--rate", "10mbps"], "--rate"),
    (["--queue-latency", "50"], "--queue-latency"),
    (["--cc", "nosuchcc"], "--cc"),
    (["--duration", "2", "--warmup", "2"], "--warmup"),
    (["--plot", "/nonexistent/lowat.png"], "--plot"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, option):
    done = run_cli(args, timeout=30)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], done.stderr
    assert done.stdout == ""


def test_unknown_cc_names_the_available_ones():
    done = run_cli(["--cc", "nosuchcc"], timeout=30)
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        available = f.read().split()
    assert all(name in done.stderr for name in available)


# --- real runs -----------------------------------------------------------------


def _check_document(document, kind):
    assert document["path"]["kind"] == kind
    assert set(document) == {"path", "config", "results", "recommendations"}
    for result in document["results"]:
        assert RESULT_KEYS <= set(result)
        lowat = result["lowat"]
        assert lowat is None or isinstance(lowat, int) or units.lowat_target_ms(lowat)
        assert (result["lowat_p50_bytes"] is not None) == isinstance(lowat, str)
        assert result["throughput_bps"] > 0
        assert result["latency_p50_ms"] > 0
        assert result["cpu_s"] >= 0 and result["ctx_switches"] >= 0
    for recommendation in document["recommendations"]:
        assert recommendation["lowat"] in [r["lowat"] for r in document["results"]]
    assert {r["rate_bps"] for r in document["recommendations"]} == \
        {r["rate_bps"] for r in document["results"]}


def test_fallback_to_loopback_without_root():
    """Unprivileged (nobody, when the tests run as root): loopback, and a notice.

    With the epollout writer (the shaped run below uses the eagain one).
    """
    done = run_cli(["--lowat", "off", "--lowat", "16k", "--lowat", "20ms", "--writer", "epollout",
                    "--rate", "2mbit", "--rate", "10mbit"] + TINY,
                   timeout=60, user=65534 if IS_ROOT else None)
    assert done.returncode == 0, done.stderr
    assert "no bottleneck" in done.stderr and "loopback" in done.stderr
    assert "Traceback" not in done.stderr
    document = json.loads(done.stdout)
    _check_document(document, "loopback")
    # Loopback has no bottleneck: the rates do not apply, each setting runs once.
    assert [r["lowat"] for r in document["results"]] == [None, 16384, "20ms"]
    assert document["path"]["rates_bps"] == []
    assert all(r["rate_bps"] is None for r in document["results"])
    for result in document["results"]:
        # One message per EPOLLOUT wakeup: as many send calls as wakeups, no EAGAIN.
        assert result["send_calls_per_mb"] == pytest.approx(result["wakeups_per_mb"])
        assert result["eagains_per_mb"] == 0


def _has_bbr():
    with open("/proc/sys/net/ipv4/tcp_available_congestion_control") as f:
        return "bbr" in f.read().split()


@requires_root
@pytest.mark.skipif(not _has_bbr(), reason="the published effect is with bbr; this kernel lacks it")
def test_shaped_run_reproduces_the_effect(no_leftovers, tmp_path):
    """16 KiB lowat: latency below off; the plot drawn; namespaces removed."""
    plot = tmp_path / "lowat.png"
    process = subprocess.Popen(CLI + ["--lowat", "off", "--lowat", "16k", "--cc", "bbr",
                                      "--plot", str(plot)] + TINY,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    assert namespaces_of(process.pid) == []
    document = json.loads(stdout)
    _check_document(document, "shaped")
    assert document["path"]["rates_bps"] == [10_000_000]
    assert document["path"]["delay_ms"] == 20  # the default --delay
    assert document["path"]["delay_via"] in ("netem", "tun delay line")
    off, small = document["results"]
    # The direction only; how much lower, at what goodput, is bench/bench_lowat.py's.
    assert small["latency_p50_ms"] < off["latency_p50_ms"]
    # Time unsent: lowat / rate plus at most one 64 KiB skb.
    assert small["sched_p50_ms"] < (16384 + 65536) * 8 / 10e6 * 1e3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@requires_root
@pytest.mark.skipif(not _has_bbr(), reason="the figures are with bbr; this kernel lacks it")
def test_time_target_over_two_rates(no_leftovers):
    """"20ms" keeps the limit at about rate x 20 ms at each rate; 16k stays 16k."""
    done = run_cli(["--lowat", "16k", "--lowat", "20ms", "--rate", "4mbit", "--rate", "20mbit",
                    "--delay", "20ms", "--cc", "bbr"] + TINY, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    _check_document(document, "shaped")
    assert document["path"]["rates_bps"] == [4_000_000, 20_000_000]
    cells = {(r["rate_bps"], r["lowat"]): r for r in document["results"]}
    assert set(cells) == {(rate, lowat) for rate in (4_000_000, 20_000_000)
                          for lowat in (16384, "20ms")}
    for rate in (4_000_000, 20_000_000):
        tuned = cells[rate, "20ms"]
        # Goodput x 20 ms (the hysteresis band is 25%; the floor 4 KiB).
        wanted = max(4096, tuned["throughput_bps"] / 8 * 0.020)
        assert wanted / 1.5 < tuned["lowat_p50_bytes"] < wanted * 1.5, tuned
        assert tuned["lowat_updates_per_mb"] > 0
        # Hysteresis: most updates leave the limit alone, even in these short
        # runs, just past bbr's start-up and its losses (ACKs in bursts).
        assert tuned["lowat_changes_per_mb"] <= tuned["lowat_updates_per_mb"] / 2
        assert cells[rate, 16384]["lowat_p50_bytes"] is None
        assert tuned["throughput_bps"] > 0.8 * rate


@requires_root
def test_delay_line_refuses_rates_above_its_ceiling(no_leftovers):
    process = subprocess.Popen(CLI + ["--rate", "10gbit", "--delay", "40ms", "--lowat", "16k"]
                               + TINY, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd="/")
    stdout, stderr = process.communicate(timeout=60)
    if process.returncode == 0 and json.loads(stdout)["path"]["delay_via"] == "netem":
        pytest.skip("this kernel has netem: no delay line, no ceiling")
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    # Any notices, then the refusal in one line.
    refusal = stderr.strip().splitlines()[-1]
    assert refusal.startswith("sockdiag: --rate 10000 Mbit/s is above what the user-space delay")
    assert "packets/s" in refusal
    assert namespaces_of(process.pid) == []


@requires_linux
@pytest.mark.parametrize("eor", [True, False], ids=["eor", "no-eor"])
def test_msg_eor_caps_the_writers_overshoot(eor):
    """The sender's writer against a peer that stopped reading: with MSG_EOR
    on every write the limit is overshot by less than one message; without,
    the kernel appends writes to the last unsent skb without checking the
    limit (SIOCOUTQNSD, read with fcntl, says how far)."""
    from sockdiag.lowat import worker

    lowat, message = 16 << 10, 4 << 10
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 << 10)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    with client, server:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, lowat)
        client.setblocking(False)
        flow = worker._Flow(client, message, None)
        sender = worker._Sender({"writer": "eagain", "stamp_every": 0, "eor": eor}, [flow])
        for _ in range(100_000):  # until the window closes and the limit refuses
            if not sender.write(flow):
                break
        unsent = ioctl_int(client, SIOCOUTQNSD)
    if eor:
        assert lowat <= unsent < lowat + message, unsent
    else:
        assert unsent >= lowat + message, unsent


@requires_root
def test_the_bottleneck_queue_holds_the_time_asked(no_leftovers):
    """tc itself reports the TBF's queue as --queue-latency of traffic at each
    rate (tc's own "latency" would add the bucket: 178 ms at 2 Mbit/s)."""
    with topology.open_path([2_000_000, 50_000_000], 50_000, 0) as path:
        router = next(name for name in path.info.namespaces if name.endswith("-rtr"))
        for rate_bps in (2_000_000, 50_000_000):
            path.set_rate(rate_bps)
            shown = topology._run(["tc", "-n", router, "-j", "qdisc", "show", "dev", "sdlw-rtr-r"])
            tbf = next(q for q in json.loads(shown) if q["kind"] == "tbf")["options"]
            # tc shows the queue as "lat": the time the limit holds beyond the bucket.
            limit = tbf["lat"] / 1e6 * tbf["rate"] + tbf["burst"]
            assert abs(limit - rate_bps / 8 * 0.050) <= 1, tbf
            assert 2 * 1514 <= tbf["burst"] <= 32 * 1024, tbf


@requires_root
def test_delay_line_adds_the_delay_asked(no_leftovers):
    """Ping across the path: the RTT is the delay (on the reply's way) and a little more."""
    with topology.open_path([10_000_000], 50_000, 30_000) as path:
        if path.info.delay_via != "tun delay line":
            pytest.skip(f"the path's delay comes from {path.info.delay_via}")
        rtts = sorted(ping_ms(path.info.namespaces[0], topology._RECEIVER_ADDRESS, 20))
    # Added once, not twice; how close to 30 ms is bench/bench_lowat.py's.
    assert 30.0 <= rtts[0] < 45.0, rtts
    assert topology.delayline.DEVICE not in subprocess.run(
        ["ip", "link"], capture_output=True, text=True).stdout


def _start_long_run(during_setup=False):
    """A run that would last a minute; returned once both workers are running
    (during_setup: as soon as its first namespace exists)."""
    process = subprocess.Popen(CLI + ["--lowat", "off", "--duration", "60", "--repeat", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/")

    def running_in(name):
        with contextlib.suppress(topology.SetupError):  # not made yet
            return topology._run(["ip", "netns", "pids", name]).split()
        return []

    def sender_running():
        names = sorted(namespaces_of(process.pid))
        if during_setup:
            return names
        # Setup itself runs commands in the sender's namespace, never in the receiver's.
        return len(names) == 3 and all(running_in(name) for name in names if name[-3:] != "rtr")

    try:
        wait_until(sender_running, timeout=20, step=0.05)
    except AssertionError:
        process.kill()
        raise
    return process


@requires_root
@pytest.mark.parametrize("during_setup", [False, True], ids=["running", "setup"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_cleans_up(no_leftovers, signum, during_setup):
    process = _start_long_run(during_setup)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert namespaces_of(process.pid) == []


@requires_root
def test_run_after_a_killed_run_removes_its_leftovers(no_leftovers):
    killed = _start_long_run()
    leftovers = namespaces_of(killed.pid)
    snd = [name for name in leftovers if name.endswith("-snd")][0]
    rtr = [name for name in leftovers if name.endswith("-rtr")][0]
    # The delay line (no netem here) holds its TUN device open in the router's namespace.
    delay_line = topology._run(["ip", "netns", "pids", rtr]).split()
    killed.kill()
    killed.communicate(timeout=10)
    assert sorted(namespaces_of(killed.pid)) == sorted(leftovers)
    # The workers and the delay line die with the run that started them
    # (PR_SET_PDEATHSIG); the TUN device goes with the delay line.
    for name in (snd, rtr):
        wait_until(lambda: not topology._run(["ip", "netns", "pids", name]).split(), timeout=5)
    if delay_line:
        assert topology.delayline.DEVICE not in topology._run(["ip", "-n", rtr, "link"])

    done = run_cli(["--lowat", "16k", "--repeat", "1", "--duration", "1.5", "--warmup", "0.5"])
    assert done.returncode == 0, done.stderr
    assert "removed leftovers of a killed run" in done.stderr
    assert all(name in done.stderr for name in leftovers)
    assert namespaces_of(killed.pid) == []


@requires_root
def test_leftover_removal_spares_live_runs(no_leftovers):
    """Namespaces of a run that is still alive (here: this process) stay."""
    me = os.getpid()
    alive = f"{topology.PREFIX}-{me}-{topology._start_time(me)}-snd"
    dead = f"{topology.PREFIX}-{me}-1-snd"  # same pid, another start time: a gone run
    try:
        for name in (alive, dead):
            topology._run(["ip", "netns", "add", name])
        assert topology.remove_leftovers() == [dead]
        assert alive in topology._namespace_names()
    finally:
        for name in (alive, dead):
            if name in topology._namespace_names():
                topology._run(["ip", "netns", "delete", name])
