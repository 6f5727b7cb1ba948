"""The one validation layer (sockdiag/_validate.py) and the findings it fixes:
non-finite and huge numbers refused at the door, in one line."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import pytest

import sockdiag
from sockdiag import _fast, _validate, decode, reference
from sockdiag.cli import cli

from conftest import connected_pair, requires_linux

from click.testing import CliRunner

SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]

# --- the ranges ------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0, 0.009, 86400.5, 1e10, 10**400])
def test_view_interval_refuses_non_finite_and_out_of_range(value):
    with pytest.raises(ValueError, match=r"^interval: .* is not a number of seconds from 0\.01 to 86400$"):
        _validate.VIEW_INTERVAL.check(value, "interval")


@pytest.mark.parametrize("value", ["1", None, True, b"1", [1]])
def test_seconds_refuse_what_is_not_a_number(value):
    with pytest.raises(TypeError, match="^interval: "):
        _validate.VIEW_INTERVAL.check(value, "interval")


@pytest.mark.parametrize("value", [1.0, 1.5, True, False, "1", None])
def test_integers_refuse_floats_and_bools_as_setsockopt_refuses_floats(value):
    with pytest.raises(TypeError, match="^fd: .* is not an integer from 0 to 2147483647$"):
        _validate.FD.check(value, "fd")


@pytest.mark.parametrize("text", ["١٢", "²", "1_000", "0x10", "1e3", "", " ", "+", "12abc", "9" * 5000])
def test_command_line_integers_are_ascii_digits(text):
    with pytest.raises(ValueError, match="is not an integer from 1 to 4194304"):
        _validate.PID.parse(text)


def test_long_values_are_cut_in_the_message():
    with pytest.raises(ValueError) as excinfo:
        _validate.PID.parse("9" * 5000)
    assert len(str(excinfo.value)) < 120


@pytest.mark.parametrize("text, expected", [("12", 12), (" 12 ", 12), ("+7", 7)])
def test_command_line_integers(text, expected):
    assert _validate.PID.parse(text) == expected


@pytest.mark.parametrize("text", ["١٢K", "100x", "1e400", "9" * 400, "-1", "inf", "nan", ""])
def test_sizes_refuse_what_the_size_grammar_does_not_read(text):
    with pytest.raises(ValueError, match="is not a size from 1 to"):
        _validate.BYTES.parse(text)


def test_sizes_read_the_one_size_grammar():
    assert _validate.BYTES.parse("1.5K") == 1536
    assert _validate.BENCH_MESSAGE_SIZE.parse("4k") == 4096
    with pytest.raises(ValueError, match="'100g' is not a size from 16 to 67108864 bytes"):
        _validate.BENCH_MESSAGE_SIZE.parse("100g")


@pytest.mark.parametrize("address", ["1:²", "1:١٢", "host:65536", "host:", ":80", "host", "[::]:-1", "a: 80"])
def test_listen_address_refuses_ports_out_of_range(address):
    with pytest.raises(ValueError, match="is not HOST:PORT with a port from 0 to 65535"):
        _validate.listen_address(address)


# --- the CLI: one line, exit 2, before any work ------------------------------------

_REFUSED = [
    (["watch", "1", "--interval", "inf"], "'--interval' / '-i'"),
    (["watch", "1", "-i", "1e10"], "'--interval' / '-i'"),
    (["top", "-i", "inf"], "'--interval' / '-i'"),
    (["ifstat", "-i", "nan"], "'--interval' / '-i'"),
    (["ifstat", "-i", "1e10"], "'--interval' / '-i'"),
    (["demo", "--duration", "nan"], "'--duration' / '-d'"),
    (["watch", str(2**31)], "'PID'"),
    (["watch", "١٢"], "'PID'"),
    (["watch", "1", "--port", "65536"], "'--port' / '-p'"),
    (["watch", "1", "--budget-sent", "1e400"], "'--budget-sent'"),
    (["export", "--max-series", "-1"], "'--max-series'"),
    (["export", "--pid", "0"], "'--pid'"),
    (["export", "--listen", "127.0.0.1:99999"], "'--listen'"),
]


@pytest.mark.parametrize("args, option", _REFUSED, ids=[" ".join(a) for a, _ in _REFUSED])
def test_cli_refuses_in_one_line_with_exit_2(args, option):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"Error: Invalid value for {option}: ")


@pytest.mark.parametrize("args", [["top", "-i", "inf"], ["ifstat", "--interval", "nan"],
                                  ["watch", "1", "-n", "0"], ["nosuchcommand"]])
def test_the_console_script_prints_one_line_on_stderr(args):
    done = subprocess.run(SOCKDIAG + args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


# --- the API: ValueError / TypeError at the call -----------------------------------


@pytest.mark.parametrize("fd", [2**31, 10**20, -1, -(2**70)])
@pytest.mark.parametrize("function", [sockdiag.send_buffer, sockdiag.tcp_info, sockdiag.get_notsent_lowat,
                                      lambda fd: sockdiag.set_notsent_lowat(fd, 1)],
                         ids=["send_buffer", "tcp_info", "get_notsent_lowat", "set_notsent_lowat"])
def test_fd_out_of_range_is_a_value_error(function, fd):
    with pytest.raises(ValueError, match=r"^fd: .* is not an integer from 0 to 2147483647$"):
        function(fd)


@pytest.mark.parametrize("fd", [True, False, 1.5, math.nan, "3", None])
def test_fd_of_the_wrong_type_is_a_type_error(fd):
    with pytest.raises(TypeError):
        sockdiag.send_buffer(fd)


@pytest.mark.parametrize("nbytes, error", [(2**32, ValueError), (-1, ValueError), (1.0, TypeError),
                                           (True, TypeError), (math.inf, TypeError)])
def test_notsent_lowat_out_of_range(tcp_pair, nbytes, error):
    with pytest.raises(error, match="^nbytes: .* is not an integer from 0 to 4294967295 bytes$"):
        sockdiag.set_notsent_lowat(tcp_pair[0], nbytes)


@requires_linux
def test_notsent_lowat_takes_the_kernels_whole_u32(tcp_pair):
    client, _ = tcp_pair
    sockdiag.set_notsent_lowat(client, 2**32 - 2)
    assert sockdiag.get_notsent_lowat(client) == 2**32 - 2
    sockdiag.set_notsent_lowat(client, 2**32 - 1)  # the kernel's "off"
    assert sockdiag.get_notsent_lowat(client) is None


@pytest.mark.parametrize("pid, error", [(0, ValueError), (2**22 + 1, ValueError), (10**20, ValueError),
                                        (1.0, TypeError), ("self", TypeError), (True, TypeError)])
def test_pids_out_of_range(pid, error):
    for function in (sockdiag.process_sockets, sockdiag.fd_headroom):
        with pytest.raises(error, match="^pid: "):
            function(pid)


@pytest.mark.parametrize("interval", [1e10, math.inf, math.nan, 0, -1, 86401])
def test_record_refuses_at_the_call_what_it_cannot_honour(interval):
    client, server = connected_pair()
    threads = threading.active_count()
    with client, server:
        with pytest.raises(ValueError, match="^interval: "):
            sockdiag.record(client, interval=interval)  # not even entered
        with pytest.raises(ValueError, match="^interval: "):
            sockdiag.record_stream(client, interval=interval)
        with pytest.raises(ValueError, match="^capacity: "):
            sockdiag.record(client, capacity=10**20)
    assert threading.active_count() == threads


class _SamplerFailure(Exception):
    pass


def test_a_failing_sampler_thread_surfaces_its_error_on_the_recording(monkeypatch):
    hooked = []
    monkeypatch.setattr(threading, "excepthook", hooked.append)
    client, server = connected_pair()
    with client, server:
        with pytest.raises(_SamplerFailure):
            with sockdiag.record(client, interval=0.001) as rec:
                def fail(fd):
                    raise _SamplerFailure("the sampler failed")

                rec._take = fail
                for _ in range(200):
                    if rec.error is not None:
                        break
                    threading.Event().wait(0.005)
        assert isinstance(rec.error, _SamplerFailure)
    assert hooked == []  # no traceback of a dying thread


# --- rates past 2^61 bytes/s: exact in the core, as in the reference ----------------


def _tcp_info_with(values: dict[str, int]) -> bytes:
    buf = bytearray(512)
    for name, offset, size in _fast.linux_tcp_info_fields():
        if name in values:
            buf[offset:offset + size] = values[name].to_bytes(size, "little")
    return bytes(buf[:max(offset + size for _, offset, size in _fast.linux_tcp_info_fields())])


@pytest.mark.parametrize("rate", [2**61, 2**61 + 1, 2**63, 2**64 - 2])
def test_rates_past_2_61_bytes_per_second_are_exact(rate):
    buf = _tcp_info_with({"delivery_rate_bps": rate, "pacing_rate_bps": rate, "max_pacing_rate_bps": rate})
    info = decode.tcp_info_linux(buf)
    assert info == reference.tcp_info_linux(buf)
    assert info.delivery_rate_bps == info.pacing_rate_bps == info.max_pacing_rate_bps == rate * 8
