"""Kernel features, SOCKDIAG_ASSUME_KERNEL profiles of older fleets, and `sockdiag doctor`.

Each command runs under the 4.14, 4.18, 5.4 and 5.10 profiles on this
kernel: where sockdiag has a fallback the result equals the unprofiled one;
where the data cannot be had, a note or notice says so.  The profiles are
set in the environment of a child process, as a user would set them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sockdiag import _features
from testsupport.children import end

from conftest import requires_linux
from test_cgroup import _holder_in, cgroup_dir  # noqa: F401 (a fixture)
from unprivileged import run_unprivileged

pytestmark = requires_linux

PROFILES = ("4.14", "4.18", "5.4", "5.10")
SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]


def release(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def sockdiag(*args: str, assume: str | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != _features.ASSUME_KERNEL}
    if assume is not None:
        environment[_features.ASSUME_KERNEL] = assume
    return subprocess.run([*SOCKDIAG, *args], capture_output=True, text=True, env=environment,
                          timeout=300)


def doctor_json(assume: str | None = None) -> dict:
    result = sockdiag("doctor", "--json", assume=assume)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def real_availability() -> dict[str, object]:
    return {feature["name"]: feature["available"] for feature in doctor_json()["features"]}


def test_doctor_json_lists_every_feature_with_name_since_available():
    report = doctor_json()
    assert report["kernel"] == os.uname().release and report["assumed_kernel"] is None
    names = [feature["name"] for feature in report["features"]]
    assert len(names) == len(set(names)) >= 8
    for feature in report["features"]:
        assert release(feature["since"]) >= (4, 0)
        assert feature["available"] in (True, False, None)
        assert feature["without"], feature["name"]  # a fallback or a notice for some command
    assert set(report["privileges"]) >= {"root", "capabilities", "tracefs", "tracefs_access",
                                         "cgroup_version", "cgroup2_mount", "yama_ptrace_scope"}
    assert set(report["privileges"]["capabilities"]) == {
        "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_ADMIN", "CAP_BPF", "CAP_PERFMON"}
    assert set(report["commands"]) >= {"watch", "top", "export", "ifstat"}


def test_doctor_as_nobody_reports_what_it_cannot_see():
    code = ("import json; from sockdiag import doctor; "
            "print(json.dumps(doctor.diagnose().asdict()))")
    report = json.loads(run_unprivileged("-c", code).stdout)
    assert report["privileges"]["root"] is False
    assert not any(report["privileges"]["capabilities"].values())
    assert any("needs root or CAP_SYS_PTRACE" in line for line in report["commands"]["watch"])
    text = run_unprivileged("-c", "from sockdiag.cli import main; main()", "doctor").stdout
    assert text.startswith("kernel: ") and "root: no" in text


@pytest.mark.parametrize("profile", PROFILES)
def test_a_profile_makes_every_newer_feature_absent(profile):
    real = real_availability()
    report = doctor_json(profile)
    assert report["assumed_kernel"] == profile
    for feature in report["features"]:
        if release(feature["since"]) > release(profile):
            assert feature["available"] is False, feature["name"]
        else:
            assert feature["available"] == real[feature["name"]], feature["name"]


def test_cgroup_filter_is_absent_under_4_18():
    features = {f["name"]: f for f in doctor_json("4.18")["features"]}
    assert features["inet_diag_cgroup_filter"]["available"] is False
    assert features["inet_diag_cgroup_filter"]["since"] == "5.8"


TCP_INFO = ("import json, socket, sockdiag; s = socket.socket(); "
            "print(json.dumps(sockdiag.tcp_info(s).asdict()))")


@pytest.mark.parametrize("profile", PROFILES)
def test_tcp_info_is_as_long_as_the_profiles_kernel(profile):
    environment = dict(os.environ, **{_features.ASSUME_KERNEL: profile})
    profiled = json.loads(subprocess.run([sys.executable, "-c", TCP_INFO], env=environment,
                                         capture_output=True, text=True, check=True).stdout)
    real = json.loads(subprocess.run([sys.executable, "-c", TCP_INFO], capture_output=True,
                                     text=True, check=True).stdout)
    for since, first_field in _features.TCP_INFO_GROWTH:
        if since > release(profile):
            assert profiled[first_field] is None, first_field
        else:
            assert (profiled[first_field] is None) == (real[first_field] is None), first_field
    if release(profile) < (4, 19):
        assert profiled["bytes_sent"] is None and profiled["bytes_retrans"] is None


def test_tcp_info_features_name_the_release_of_their_field():
    growth = dict((field, since) for since, field in _features.TCP_INFO_GROWTH)
    since = {f.name: f.since for f in _features.kernel_features()}
    assert since["tcp_info_notsent_bytes"] == "%d.%d" % growth["notsent_bytes"]
    assert since["tcp_info_delivery_rate"] == "%d.%d" % growth["delivery_rate_bps"]
    assert since["tcp_info_bytes_sent"] == "%d.%d" % growth["bytes_sent"]


@pytest.mark.parametrize("value", ["banana", "4", "4.18.1", "3.10", "-5.4", "4.x"])
def test_a_bad_assumed_kernel_is_one_line_and_exit_2(value):
    result = sockdiag("ifstat", "--once", "--json", assume=value)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1 and "SOCKDIAG_ASSUME_KERNEL" in result.stderr


def _sockets(sample: dict) -> set[tuple]:
    return {(s["local"], s["remote"], s["state"], s["unacked"], s["unsent"]) for s in sample["sockets"]}


@pytest.mark.parametrize("profile", PROFILES)
def test_watch_cgroup_finds_the_same_sockets_under_every_profile(cgroup_dir, profile):  # noqa: F811
    child, _ = _holder_in(cgroup_dir, 3)
    try:
        plain = sockdiag("watch", "--cgroup", cgroup_dir, "--once", "--json")
        profiled = sockdiag("watch", "--cgroup", cgroup_dir, "--once", "--json", assume=profile)
        assert plain.returncode == profiled.returncode == 0, profiled.stderr
        assert _sockets(json.loads(profiled.stdout)) == _sockets(json.loads(plain.stdout))
        assert len(json.loads(plain.stdout)["sockets"]) == 7
        filter_absent = release(profile) < (5, 8) or not real_availability()["inet_diag_cgroup_filter"]
        notices = [line for line in profiled.stderr.splitlines() if "inet_diag_cgroup_filter" in line]
        assert len(notices) == (1 if filter_absent else 0), profiled.stderr
    finally:
        end(child)


@pytest.mark.parametrize("profile", PROFILES)
def test_watch_of_a_process_is_equal_under_every_profile(profile):
    holder = subprocess.Popen([sys.executable, "-c", "import socket, sys\n"
                               "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n"
                               "c = socket.create_connection(l.getsockname()); s, _ = l.accept()\n"
                               "print(flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        holder.stdout.readline()
        plain = sockdiag("watch", str(holder.pid), "--once")
        profiled = sockdiag("watch", str(holder.pid), "--once", assume=profile)
        assert plain.returncode == profiled.returncode == 0, profiled.stderr
        # The fd count (the header's "fds N of M") is listed under profiles before 6.2: the same.
        assert [line for line in profiled.stdout.splitlines() if "fds " in line] == \
            [line for line in plain.stdout.splitlines() if "fds " in line]
        as_json = [json.loads(sockdiag("watch", str(holder.pid), "--once", "--json", assume=assume).stdout)
                   for assume in (None, profile)]
        assert _sockets(as_json[0]) == _sockets(as_json[1]) and len(as_json[0]["sockets"]) == 3
    finally:
        end(holder)


@pytest.mark.parametrize("profile", PROFILES)
def test_top_says_in_its_notes_what_a_profile_cannot_see(profile):
    result = sockdiag("top", "--once", "--json", assume=profile)
    assert result.returncode == 0, result.stderr
    sample = json.loads(result.stdout)
    notes = " ".join(sample["notes"])
    if release(profile) < (4, 19):
        assert "tcp_info_bytes_sent" in notes
        assert all(row["sent_bytes"] is None and row["retrans_bytes"] is None
                   for row in sample["processes"])
    else:
        assert "tcp_info_bytes_sent" not in notes
    if release(profile) < (4, 16):
        assert "inet_sock_set_state" in notes


@pytest.mark.parametrize("profile", PROFILES)
def test_ifstat_and_export_are_equal_under_every_profile(profile):
    plain = sockdiag("ifstat", "--once", "--json")
    profiled = sockdiag("ifstat", "--once", "--json", assume=profile)
    assert plain.returncode == profiled.returncode == 0, profiled.stderr
    names = [set(json.loads(r.stdout)["interfaces"]) for r in (plain, profiled)]
    assert names[0] == names[1]
    exported = sockdiag("export", "--once", "--pid", str(os.getpid()), assume=profile)
    assert exported.returncode == 0, exported.stderr
    assert "sockdiag_" in exported.stdout
