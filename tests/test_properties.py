"""Property-based tests over the whole surface: every command's options and
every public function, fed non-finite, huge, negative, non-ASCII, empty and
wrongly typed values.

The contract each time: a value is either taken (and then lies in the range
sockdiag._validate gives it) or refused before any work, in one line: exit 2
on the command line, ValueError/TypeError (or a SockdiagError naming the
socket or process) from the API.  No traceback, nothing left behind.  And
the Cython decoders agree with the pure-Python reference on extreme counters.
"""

from __future__ import annotations

import glob
import math
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Callable, Optional

import click
import psutil
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sockdiag
from sockdiag import _fast, _validate, decode, reference
from sockdiag._common import LINUX
from sockdiag.cli import cli

from conftest import connected_pair, requires_linux

# Each property runs a few dozen examples: the whole module stays within
# seconds (pytest -q runs it with the rest, in the 2-minute budget).
QUICK = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- hostile values ---------------------------------------------------------------

_EDGES = ["nan", "NaN", "inf", "-inf", "+inf", "infinity", "1e10", "1e400", "-1e400", "1e-400",
          "-1", "0", "-0", "", " ", "١٢", "٣s", "²", "1_000", "0x10", "0b1", "1e3", "1.5",
          str(2**31), str(2**32), str(2**63), str(2**64), str(10**20), "9" * 400, "9" * 5000,
          "100g", "1e400k", "9" * 400 + "ms", "12abc", "١٢k", "Ⅻ", "12\n", "--"]

HOSTILE_TEXT = st.one_of(
    st.sampled_from(_EDGES),
    st.integers().map(str),
    st.floats().map(repr),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=5),
    st.text(max_size=12),
).filter(lambda text: "\0" not in text)  # argv cannot carry a NUL

_EDGE_OBJECTS = [math.nan, math.inf, -math.inf, -0.0, 1e10, 1e300, 2**31, 2**32, 2**63, 2**64, 10**20,
                 -(2**63) - 1, -1, 0, True, False, None, "", "١٢", b"1", [], {}, object(), 1 + 0j]

HOSTILE_OBJECTS = st.one_of(
    st.sampled_from(_EDGE_OBJECTS),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.text(max_size=6),
    st.binary(max_size=6),
    st.none(),
)


def _one_line(text: str) -> bool:
    return text.count("\n") <= 1 and text.strip() != ""


# --- nothing left behind -------------------------------------------------------------


def _leftovers() -> dict:
    """What this process may leave behind.  Namespaces, trace instances and
    cgroups carry their creator's pid; other test runs' come and go meanwhile."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout \
        if LINUX else ""
    ours = f"-{os.getpid()}"
    return {
        "threads": sorted(t.name for t in threading.enumerate()),
        "children": sorted(p.pid for p in psutil.Process().children(recursive=True)),
        "namespaces": sorted(n for n in namespaces.split() if f"{ours}-" in n),
        "trace instances": sorted(p for p in glob.glob("/sys/kernel/tracing/instances/sockdiag-*")
                                  if p.endswith(ours)),
        "cgroups": sorted(p for p in glob.glob("/sys/fs/cgroup/**/sockdiag*", recursive=True)
                          if ours in p),
    }


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind():
    before = _leftovers()
    yield
    after = _leftovers()
    for kind in before:
        assert after[kind] == before[kind], f"{kind} left behind"


@pytest.fixture
def no_new_threads():
    threads = threading.active_count()
    yield
    assert threading.active_count() == threads


# --- the command line ------------------------------------------------------------------


def _parsed(args: list[str]) -> dict:
    """The parameters click hands a command for args, without running it;
    click.UsageError when refused."""
    ctx = click.Context(cli, info_name="sockdiag")
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, command, args = command.resolve_command(ctx, args)
        ctx = click.Context(command, info_name=name, parent=ctx)
    with command.make_context(name, args, parent=ctx.parent) as sub:
        return sub.params


def _assert_refused_in_one_line(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, (args, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


@dataclass(frozen=True)
class Option:
    """One option (or, with name None, the positional argument) of a command,
    the parameter it becomes and the check every accepted value passes."""

    command: tuple[str, ...]
    name: Optional[str]
    param: str
    check: Optional[Callable] = None

    def __str__(self) -> str:
        return " ".join(self.command + ((self.name,) if self.name else ("ARG",)))


def _lowat(value) -> None:
    """--lowat: bytes, or a time target kept as its text ("20ms")."""
    if isinstance(value, str):
        _validate.LOWAT_TARGET_MS.check(float(value.removesuffix("ms")))
    else:
        _validate.LOWAT_BYTES.check(value)


PID_ARGS = ("watch", "1")
OPTIONS = [
    Option(("watch",), None, "pid", _validate.PID.check),
    *(Option(command, "--interval", "interval", _validate.VIEW_INTERVAL.check)
      for command in (PID_ARGS, ("top",), ("ifstat",), ("demo",))),
    *(Option(command, "--count", "count", _validate.COUNT.check)
      for command in (PID_ARGS, ("top",), ("ifstat",))),
    Option(PID_ARGS, "--port", "ports", _validate.PORT.check),
    Option(PID_ARGS, "--budget-sent", "budget_sent", _validate.BYTES.check),
    Option(PID_ARGS, "--budget-received", "budget_received", _validate.BYTES.check),
    Option(PID_ARGS, "--state", "states"),
    Option(PID_ARGS, "--sort", "sort"),
    Option(PID_ARGS, "--on-exceed", "on_exceed"),
    Option(("top",), "--sort", "sort_key"),
    Option(("ifstat",), "--interfaces", "wanted"),
    Option(("demo",), "--duration", "duration", _validate.RUN_DURATION.check),
    # (host, port): each is checked as a part of the address.
    Option(("export",), "--listen", "listen",
           lambda part: 0 <= part <= 65535 if isinstance(part, int) else bool(part)),
    Option(("export",), "--pid", "pids", _validate.PID.check),
    Option(("export",), "--max-series", "max_series", _validate.LIMIT.check),
    Option(("export",), "--process-name", "process_names"),
    Option(("export",), "--web-config", "web_config"),
    Option(("bench", "lowat"), "--repeat", "repeat", lambda v: 1 <= v <= 100),
    Option(("bench", "lowat"), "--flows", "flows", lambda v: 1 <= v <= 256),
    Option(("bench", "lowat"), "--duration", "duration", _validate.RUN_DURATION.check),
    Option(("bench", "lowat"), "--warmup", "warmup", _validate.PART_OF_RUN.check),
    Option(("bench", "lowat"), "--message-size", "message_size",
           _validate.BENCH_MESSAGE_SIZE.check),
    Option(("bench", "lowat"), "--stamp-every", "stamp_every", _validate.COUNT.check),
    Option(("bench", "lowat"), "--delay", "delay", lambda us: 0 <= us <= 60e6),
    Option(("bench", "lowat"), "--queue-latency", "queue_latency", lambda us: 0 <= us <= 60e6),
    Option(("bench", "lowat"), "--lowat", "lowats", _lowat),
    Option(("bench", "lowat"), "--sndbuf", "sndbufs", _validate.LOWAT_BYTES.check),
    Option(("bench", "lowat"), "--rate", "rates", _validate.BENCH_RATE_BPS.check),
    Option(("bench", "lowat"), "--writer", "writer"),
    Option(("bench", "lowat"), "--cc", "ccs"),
]


@pytest.mark.parametrize("option", OPTIONS, ids=str)
@QUICK
@given(value=HOSTILE_TEXT)
def test_every_option_takes_a_value_in_range_or_refuses_it_in_one_line(option, value, no_new_threads):
    args = [*option.command, f"{option.name}={value}"] if option.name else [*option.command, "--", value]
    try:
        params = _parsed(args)
    except click.UsageError:
        _assert_refused_in_one_line(args)
        return
    accepted = params[option.param]
    for one in accepted if isinstance(accepted, (tuple, list, frozenset)) else [accepted]:
        if option.check is not None and one is not None:
            assert option.check(one) is not False, (option, value, one)
        if isinstance(one, float):
            assert math.isfinite(one)


@QUICK
@given(value=st.one_of(HOSTILE_TEXT, st.builds("{}:{}".format, HOSTILE_TEXT, st.integers(-5, 70000)),
                       st.builds("[{}]:{}".format, HOSTILE_TEXT, st.integers(0, 65535))))
def test_an_accepted_listen_address_is_the_host_and_port_given(value, no_new_threads):
    try:
        host, port = _parsed(["export", f"--listen={value}"])["listen"]
    except click.UsageError:
        return  # refused: in one line, as the test above checks
    given_host, _, given_port = value.rpartition(":")
    assert given_host in (host, f"[{host}]") and host
    assert int(given_port) == port and 0 <= port <= 65535


# The values the issue found taken, or ending in a traceback, before bench
# lowat's options went through sockdiag._validate.
_BENCH_FOUND = [
    ("--rate", "1e400mbit", "rates", None),
    ("--duration", "nan", "duration", _validate.RUN_DURATION),
    ("--duration", "inf", "duration", _validate.RUN_DURATION),
    ("--warmup", "inf", "warmup", _validate.PART_OF_RUN),
    ("--warmup", "nan", "warmup", _validate.PART_OF_RUN),
    ("--message-size", "100g", "message_size", _validate.BENCH_MESSAGE_SIZE),
    ("--stamp-every", str(10**20), "stamp_every", _validate.COUNT),
    ("--delay", "9" * 400 + "ms", "delay", None),
    ("--queue-latency", "9" * 400 + "ms", "queue_latency", None),
]


@pytest.mark.parametrize("name, value, param, valid", _BENCH_FOUND,
                         ids=[f"{n}={v[:8]}" for n, v, _, _ in _BENCH_FOUND])
def test_bench_lowat_refuses_at_parse(name, value, param, valid):
    with pytest.raises(click.UsageError):
        _parsed(["bench", "lowat", f"{name}={value}"])
    _assert_refused_in_one_line(["bench", "lowat", f"{name}={value}"])


@pytest.mark.parametrize("path, status, start", [
    ("/nonexistent/web.yml", 1, "sockdiag: web config "),
    ("/", 2, "Error: Invalid value for '--web-config'"),
])
def test_a_web_config_that_cannot_be_read_is_one_line(path, status, start):
    args = ["export", "--web-config", path, "--listen", "127.0.0.1:0"]
    done = subprocess.run([sys.executable, "-c", "from sockdiag.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == status
    assert done.stderr.startswith(start) and done.stderr.count("\n") == 1


_YAML_SCALARS = st.one_of(st.integers(), st.floats(), st.text(max_size=8), st.none(), st.booleans())
_WEB_CONFIG = st.recursive(
    st.dictionaries(st.sampled_from(["tls_server_config", "basic_auth_users", "http_server_config",
                                     "cert_file", "key_file", "client_auth_type", "min_version",
                                     "user", "headers", "x"]), _YAML_SCALARS, max_size=3),
    lambda inner: st.dictionaries(st.sampled_from(["tls_server_config", "basic_auth_users",
                                                   "http_server_config", "headers"]),
                                  inner | st.lists(_YAML_SCALARS, max_size=2), max_size=3),
    max_leaves=6,
) | _YAML_SCALARS | st.text(max_size=30)


@QUICK
@given(document=_WEB_CONFIG)
def test_any_web_config_is_read_or_refused_in_one_line(document, tmp_path_factory):
    yaml = pytest.importorskip("yaml")
    from sockdiag.web import load_web_config

    path = tmp_path_factory.mktemp("web") / "web.yml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    try:
        load_web_config(str(path))
    except sockdiag.SockdiagError as err:
        assert _one_line(str(err))


# --- the API ----------------------------------------------------------------------------


def _is_open_fd(value) -> bool:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31 - 1):
        return False
    try:
        os.fstat(value)
    except OSError:
        return False
    return True


REFUSED = object()


def _refused_cleanly(call: Callable):
    """call()'s result, or REFUSED when it raised ValueError, TypeError or a
    SockdiagError (never OverflowError) with a one-line message."""
    try:
        return call()
    except (ValueError, TypeError, sockdiag.SockdiagError) as err:
        assert type(err) is not OverflowError and _one_line(str(err)), repr(err)
        return REFUSED


@pytest.mark.parametrize("function", ["send_buffer", "tcp_info", "get_notsent_lowat"])
@QUICK
@given(fd=HOSTILE_OBJECTS)
def test_socket_functions_take_any_fd_or_refuse_it(function, fd):
    if _refused_cleanly(lambda: getattr(sockdiag, function)(fd)) is not REFUSED:
        assert _is_open_fd(fd)  # only an open socket answers


@QUICK
@given(fd=HOSTILE_OBJECTS)
def test_set_notsent_lowat_refuses_any_fd_that_is_not_a_socket_of_ours(fd):
    if _is_open_fd(fd):
        return  # never touch the test process's own sockets
    with pytest.raises((ValueError, TypeError, sockdiag.SockdiagError)):
        sockdiag.set_notsent_lowat(fd, 1)


@pytest.fixture(scope="module")
def pair():
    client, server = connected_pair()
    with client, server:
        yield client, server


@requires_linux
@QUICK
@given(nbytes=st.one_of(HOSTILE_OBJECTS, st.integers(0, 2**32 - 1)))
def test_set_notsent_lowat_sets_what_it_takes(pair, nbytes):
    client, _ = pair
    try:
        sockdiag.set_notsent_lowat(client, nbytes)
    except (ValueError, TypeError) as err:
        assert _one_line(str(err))
        assert nbytes is not None
        return
    if nbytes is None or nbytes == 0:
        return  # the namespace's sysctl applies
    assert sockdiag.get_notsent_lowat(client) == (None if nbytes == 2**32 - 1 else nbytes)


@pytest.mark.parametrize("function", ["process_sockets", "fd_headroom"])
@QUICK
@given(pid=st.one_of(HOSTILE_OBJECTS, st.integers(1, 2**22)))
def test_pid_functions_take_any_pid_or_refuse_it(function, pid):
    _refused_cleanly(lambda: getattr(sockdiag, function)(pid))


@QUICK
@given(states=st.one_of(st.lists(HOSTILE_TEXT, max_size=3), HOSTILE_TEXT, st.none()))
def test_process_sockets_takes_any_states_or_refuses_them(states):
    _refused_cleanly(lambda: sockdiag.process_sockets(os.getpid(), states))


@requires_linux
@settings(QUICK, max_examples=15)
@given(interval_s=HOSTILE_OBJECTS, pids=st.one_of(st.none(), st.lists(HOSTILE_OBJECTS, max_size=2)))
def test_process_traffic_refuses_before_any_work(interval_s, pids, no_new_threads):
    try:
        accepted = _validate.SAMPLE_INTERVAL.check(interval_s)
    except (ValueError, TypeError):
        accepted = None
    if accepted is not None and accepted > 0.005:
        interval_s = 0.001  # taken: keep the sample short
    _refused_cleanly(lambda: sockdiag.process_traffic(interval_s, pids))


@requires_linux
@QUICK
@given(pid=HOSTILE_OBJECTS, sent=HOSTILE_OBJECTS)
def test_byte_budget_takes_a_pid_and_a_budget_in_range_or_refuses_them(pid, sent):
    budget = _refused_cleanly(lambda: sockdiag.ByteBudget(pid, sent_bytes=sent))
    if budget is not REFUSED:
        _validate.PID.check(budget.pid)
        _validate.BYTES.check(budget.sent_bytes)


@settings(QUICK, max_examples=25)
@given(interval=st.one_of(HOSTILE_OBJECTS, st.floats(1e-4, 86400)), capacity=HOSTILE_OBJECTS)
def test_record_takes_what_it_can_honour_and_refuses_the_rest_at_the_call(pair, interval, capacity, no_new_threads):
    client, _ = pair
    try:
        recording = sockdiag.record(client, interval=interval, capacity=capacity)
    except (ValueError, TypeError) as err:
        assert _one_line(str(err))
        return
    with recording as rec:
        rec.socket.send(b"x")
    assert rec.error is None and len(rec.samples) >= 1


@settings(QUICK, max_examples=25)
@given(capacity=HOSTILE_OBJECTS, fields=st.one_of(HOSTILE_TEXT, st.lists(HOSTILE_TEXT, max_size=2)))
def test_instrumented_socket_takes_what_it_can_honour(pair, capacity, fields):
    client, _ = pair
    wrapped = _refused_cleanly(lambda: sockdiag.InstrumentedSocket(client, fields=fields, capacity=capacity))
    if wrapped is not REFUSED:
        wrapped.send(b"x")
        assert wrapped.recording.error is None


@requires_linux
@settings(QUICK, max_examples=25)
@given(target_ms=HOSTILE_OBJECTS, nbytes=HOSTILE_OBJECTS, interval_s=HOSTILE_OBJECTS,
       tolerance=HOSTILE_OBJECTS)
def test_lowat_tuner_takes_numbers_in_range_or_refuses_them(pair, target_ms, nbytes, interval_s, tolerance):
    client, _ = pair
    tuner = _refused_cleanly(lambda: sockdiag.LowatTuner(
        client, target_ms=target_ms, min_bytes=nbytes, max_bytes=2**31 - 1,
        interval_s=interval_s, tolerance=tolerance))
    if tuner is not REFUSED:
        assert 1 <= tuner.update() <= 2**31 - 1
    sockdiag.set_notsent_lowat(client, None)


@QUICK
@given(elapsed_s=HOSTILE_OBJECTS)
def test_interface_rates_take_a_finite_positive_elapsed_time(elapsed_s):
    counters = sockdiag.interfaces()
    rates = _refused_cleanly(lambda: sockdiag.interface_rates(counters, counters, elapsed_s))
    if rates is not REFUSED:
        assert 0 < elapsed_s < math.inf


# --- the Cython decoders against the reference, on extreme counters --------------------

_FIELDS = _fast.linux_tcp_info_fields()
_LENGTH = max(offset + size for _, offset, size in _FIELDS)


def _extreme(size: int) -> st.SearchStrategy[int]:
    top = 2 ** (8 * size) - 1
    return st.one_of(st.sampled_from([0, 1, top, top - 1, top // 2, top // 2 + 1, top // 8, top // 8 + 1]),
                     st.integers(0, top))


@st.composite
def _tcp_info_buffers(draw) -> bytes:
    buf = bytearray(draw(st.binary(min_size=8, max_size=8)).ljust(_LENGTH, b"\0"))
    for _, offset, size in _FIELDS:
        buf[offset:offset + size] = draw(_extreme(size)).to_bytes(size, "little")
    return bytes(buf[:draw(st.integers(8, _LENGTH))])


@settings(max_examples=300, deadline=None)
@given(buf=_tcp_info_buffers())
def test_tcp_info_decoder_agrees_with_the_reference_on_extreme_counters(buf):
    assert decode.tcp_info_linux(buf) == reference.tcp_info_linux(buf)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(_extreme(8), min_size=23, max_size=26))
def test_link_stats64_decoder_agrees_with_the_reference_on_extreme_counters(values):
    buf = b"".join(value.to_bytes(8, "little") for value in values)
    assert decode.rtnl_link_stats64(buf) == reference.rtnl_link_stats64(buf)
