"""`sockdiag ifstat` and the rates behind it: CliRunner, a subprocess, a real terminal."""

from __future__ import annotations


import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sockdiag
from sockdiag import InterfaceCounters, InterfaceRates, SockdiagError
from sockdiag.cli import cli
from sockdiag.fields import format_count, format_decimal
from sockdiag.views.ifstat import busiest_interfaces_line

from conftest import requires_linux
from test_interfaces import generate_loopback_traffic
from testsupport.terminal import Terminal, requires_tmux

pytestmark = requires_linux

SOCKDIAG = str(Path(sys.executable).parent / "sockdiag")
RATE_KEYS = ("rx_bytes_per_s", "tx_bytes_per_s", "rx_packets_per_s", "tx_packets_per_s")


def counters(name: str, rx_bytes, tx_bytes, rx_packets=0, tx_packets=0) -> InterfaceCounters:
    return InterfaceCounters(name=name, index=1, is_up=True, mtu=1500,
                             rx_bytes=rx_bytes, tx_bytes=tx_bytes,
                             rx_packets=rx_packets, tx_packets=tx_packets,
                             rx_errors=0, tx_errors=0, rx_drops=0, tx_drops=0)


# --- rates from two typed samples ------------------------------------------------


def test_interface_rates():
    before = {"a": counters("a", 1000, 0, 10, 0), "gone": counters("gone", 0, 0)}
    after = {"a": counters("a", 3000, 500, 30, 5), "new": counters("new", 9, 9)}
    rates = sockdiag.interface_rates(before, after, 2.0)
    assert rates == {"a": InterfaceRates("a", 1000.0, 250.0, 10.0, 2.5)}


def test_interface_rates_never_fake():
    # Counters that went backwards (interface re-created) or are missing have no rate.
    before = {"a": counters("a", 5000, None)}
    after = {"a": counters("a", 10, 7)}
    rate = sockdiag.interface_rates(before, after, 1.0)["a"]
    assert rate.rx_bytes_per_s is None and rate.tx_bytes_per_s is None
    assert rate.rx_packets_per_s == 0.0
    with pytest.raises(ValueError):
        sockdiag.interface_rates(before, after, 0.0)


def test_busiest_interfaces_line():
    before = {n: counters(n, 0, 0) for n in ("lo", "eth0", "eth1")}
    after = {"lo": counters("lo", 10, 10), "eth0": counters("eth0", 2_500_000, 1000),
             "eth1": counters("eth1", 0, 40_000)}
    assert busiest_interfaces_line(before, after, 1.0) == (
        "eth0 rx 2.5 MB/s tx 1.0 kB/s · eth1 rx 0 B/s tx 40.0 kB/s")
    assert busiest_interfaces_line(before, after, 1.0, n=1).startswith("eth0 ")
    assert busiest_interfaces_line({}, after, 1.0) == ""
    # An interface that is down is not among the busiest, whatever its rate says.
    down = {**after, "eth1": after["eth1"].replace(is_up=False)}
    assert busiest_interfaces_line(before, down, 1.0) == "eth0 rx 2.5 MB/s tx 1.0 kB/s · lo rx 10 B/s tx 10 B/s"


def test_human_units():
    assert format_decimal(None) == format_count(None) == "-"
    assert format_decimal(999) == "999 B"
    assert format_decimal(4_300_000_000) == "4.3 GB"
    assert format_decimal(1500.0, "B/s") == "1.5 kB/s"
    assert format_count(12_345) == "12.3k"
    assert format_count(7) == "7"


# --- the command -------------------------------------------------------------------


def run(*args: str):
    return CliRunner().invoke(cli, ["ifstat", *args])


def test_once_json_is_one_sample_with_rates():
    result = run("--once", "--json", "-i", "0.2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1
    sample = json.loads(lines[0])
    assert abs(sample["time"] - time.time()) < 60
    live = sockdiag.interfaces()
    assert set(sample["interfaces"]) == set(live)
    lo = sample["interfaces"]["lo"]
    assert all(isinstance(lo[key], float) and lo[key] >= 0 for key in RATE_KEYS)
    assert lo["index"] == live["lo"].index and lo["mtu"] == live["lo"].mtu
    assert lo["rx_bytes"] <= live["lo"].rx_bytes


def test_json_second_sample_has_rates_for_the_filtered_interface():
    result = run("-n", "2", "-i", "0.2", "--json", "--interfaces", "lo")
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.output.splitlines())
    assert list(first["interfaces"]) == list(second["interfaces"]) == ["lo"]
    assert 0.15 <= second["time"] - first["time"] < 1.0  # the loop keeps the interval
    rates = second["interfaces"]["lo"]
    assert all(isinstance(rates[key], float) and rates[key] >= 0 for key in RATE_KEYS)
    moved = second["interfaces"]["lo"]["rx_bytes"] - first["interfaces"]["lo"]["rx_bytes"]
    elapsed = second["time"] - first["time"]
    assert rates["rx_bytes_per_s"] == pytest.approx(moved / elapsed, rel=0.5, abs=1)


def test_detail_and_json_show_every_field_as_the_table_does():
    """Enter on an interface: each field as its column shows it (decimal
    units, "up", "-" for an unknown rate); the JSON has the raw values."""
    from sockdiag._watch import interface_rates
    from sockdiag.views import ifstat as ifstat_view

    before = sockdiag.interfaces()
    time.sleep(0.05)
    after = sockdiag.interfaces()
    rates = interface_rates(before, after, 0.05)
    lo = after["lo"]
    for known in (rates, {}):  # the first sample has no rates
        lines = ifstat_view.detail(after, known, "lo", [], 60, 30).splitlines()  # one column
        mtu = open("/sys/class/net/lo/mtu").read().strip()
        assert {"STATE up", f"MTU {mtu}", f"RX total {format_decimal(lo.rx_bytes)}",
                f"ERR rx/tx {lo.rx_errors}/{lo.tx_errors}"} <= set(lines), lines
        rates_shown = [line for line in lines if line.startswith(("RX/s ", "TX/s "))]
        assert len(rates_shown) == 2
        assert all(line.endswith(" -") for line in rates_shown) == (not known), rates_shown
    document = json.loads(ifstat_view.json_line(0.0, after, {}))["interfaces"]["lo"]
    assert set(document) == set(InterfaceCounters._fields) - {"name"} | set(RATE_KEYS)
    assert document["rx_bytes"] == lo.rx_bytes and all(document[key] is None for key in RATE_KEYS)


def test_filter_repeated_and_comma_separated():
    names = sorted(sockdiag.interfaces())
    if len(names) < 2:
        pytest.skip("needs two interfaces")
    result = run("--once", "--json", "-I", names[0], "--interfaces", f" {names[1]},")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["interfaces"]) == names[:2]


def cells(line: str) -> list[str]:
    """The cells of a row of ifstat's table (columns are two spaces apart or more)."""
    return re.split(r"\s{2,}", line.strip())


def test_table_once_has_rates():
    result = run("--once", "-i", "0.2")
    assert result.exit_code == 0, result.output
    assert result.output.count("IFACE") == 1 and "RX/s" in result.output
    lo_row = next(line for line in result.output.splitlines() if line.startswith("lo "))
    assert "up" in lo_row and "-" not in cells(lo_row) and "B/s" in lo_row and "65536" in lo_row


def test_first_table_has_no_fake_rate():
    result = run("-n", "1")
    assert result.exit_code == 0, result.output
    lo_row = next(line for line in result.output.splitlines() if line.startswith("lo "))
    assert cells(lo_row)[3:7] == ["-"] * 4  # RX/s TX/s RX pkt/s TX pkt/s


def test_unknown_interface_is_an_error():
    result = run("--once", "-I", "lo,sdnope0")
    assert result.exit_code == 1
    assert isinstance(result.exception, SockdiagError)
    assert "sdnope0" in str(result.exception)


def test_unknown_interface_one_line_on_stderr():
    done = subprocess.run([SOCKDIAG, "ifstat", "--interfaces", "sdnope0"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("sockdiag: no interface named sdnope0 (there are: ")
    assert done.stderr.count("\n") == 1


@requires_tmux
def test_live_view_in_a_real_terminal():
    with Terminal("ifstat", "-i", "0.3", "-I", "lo", width=150, height=30) as terminal:
        generate_loopback_traffic(8 << 20)
        # The screen is redrawn: one header, a rate in the lo row after the second sample.
        text = terminal.wait_for("B/s", timeout=10)
        assert text.count("IFACE") == 1
        assert any(line.startswith("lo ") and "B/s" in line for line in text.splitlines())
        terminal.press("C-c")
        assert terminal.exit_status(timeout=10) == 0  # as q, and as watch and top
        assert "Traceback" not in terminal.screen()
