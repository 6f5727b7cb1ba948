"""monitoring/: the alert rules pass promtool's checks and unit tests, every
dashboard query answers with data on a real Prometheus scraping a real
exporter, and every metric they name is one the exporter exposes; the fd
headroom series they read, against /proc and prlimit."""

from __future__ import annotations

import json
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from conftest import requires_linux, wait_until
from prometheus_server import prometheus_server
from test_export import (  # noqa: F401 (unsent_pair: the fixture)
    parse, requires_prometheus, run_cli, run_exporter, unsent_pair, value)

pytestmark = requires_linux

MONITORING = pathlib.Path(__file__).parent.parent / "monitoring"
PROMTOOL = shutil.which("promtool")
requires_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="needs promtool (Debian's prometheus package)")

# Grafana's variables, as the dashboard's "All" and a short rate window give them.
GRAFANA_VARIABLES = {"$instance": ".*", "$process": ".*", "$__rate_interval": "1m"}
METRIC_NAME = re.compile(r"\b(?:sockdiag|process)_[a-z_]+\b")


def dashboard() -> dict:
    return json.loads((MONITORING / "dashboard.json").read_text())


def dashboard_queries() -> list[str]:
    """Every panel target's PromQL, and the selector of each label_values variable."""
    queries = [target["expr"] for panel in dashboard()["panels"]
               for target in panel.get("targets", ())]
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            found = re.fullmatch(r"label_values\((.*), *\w+\)", variable["query"]["query"])
            queries.append(found.group(1))
    return queries


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def with_variables(promql: str) -> str:
    for name, replacement in GRAFANA_VARIABLES.items():
        promql = promql.replace(name, replacement)
    return promql


# --- alert rules -------------------------------------------------------------


@requires_promtool
def test_alert_rules_pass_promtool_check_and_unit_tests():
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts_test.yml"]):
        done = subprocess.run([PROMTOOL, *command], cwd=MONITORING, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_a_unit_test_and_its_threshold_documented():
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    tests = yaml.safe_load((MONITORING / "alerts_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"] for case in test["alert_rule_test"]
              if case["exp_alerts"]}
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert tested == names
    documented = (MONITORING.parent / "docs" / "monitoring.md").read_text()
    assert [name for name in sorted(names) if f"| `{name}` |" not in documented] == []


# --- the metrics they name -----------------------------------------------------


def test_rules_and_dashboard_name_only_exported_metrics(unsent_pair):
    # Every family this exporter writes: a watched process with a connection, per socket.
    exposition = run_cli("--pid", str(os.getpid()), "--per-socket", "--once")
    assert exposition.returncode == 0, exposition.stderr
    exported = {line.split("{")[0].split()[0] for line in exposition.stdout.splitlines()
                if line and not line.startswith("#")}
    named = {name for promql in rule_expressions() + dashboard_queries()
             for name in METRIC_NAME.findall(promql)}
    assert named, "no metric found in the rules and the dashboard"
    assert named <= exported, sorted(named - exported)


# --- the dashboard -----------------------------------------------------------


def test_dashboard_panels_have_unique_ids_and_one_datasource():
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        for target in panel.get("targets", ()):
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@requires_prometheus
def test_every_dashboard_query_returns_data(tmp_path, unsent_pair):
    with run_exporter("--pid", str(os.getpid()), "--per-socket") as url, \
            prometheus_server(tmp_path, [url.split("/")[2]]) as prom:
        for promql in dashboard_queries():
            query = with_variables(promql)
            try:
                wait_until(lambda: prom.query(query), timeout=30, step=0.5)
            except AssertionError:
                pytest.fail(f"no data from the dashboard query {query}")


# --- fd headroom -------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import os, resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = [os.open("/dev/null", os.O_RDONLY) for _ in range(int(sys.argv[2]))]
    print("ready", flush=True)
    sys.stdin.read()
""")


def test_open_and_max_fds_match_proc_and_prlimit():
    child = subprocess.Popen([sys.executable, "-c", HOLDER, "777", "40"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        pid = str(child.pid)
        done = run_cli("--pid", pid, "--once")
        assert done.returncode == 0, done.stderr
        families = parse(done.stdout)
        # Independent sources: the listing of /proc/<pid>/fd and prlimit(2).
        assert value(families, "sockdiag_process_open_fds", pid=pid) == len(
            os.listdir(f"/proc/{pid}/fd"))
        assert value(families, "sockdiag_process_max_fds", pid=pid) == resource.prlimit(
            child.pid, resource.RLIMIT_NOFILE)[0] == 777
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
