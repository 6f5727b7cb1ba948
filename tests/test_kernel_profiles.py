"""Every command under the SOCKDIAG_ASSUME_KERNEL profiles of older fleets: 4.14, 4.18, 5.4, 5.10.

Where sockdiag has a fallback the result equals the unprofiled one; where
the data cannot be had, a note or notice says so.  The profile is set in
the environment of a child process, as a user would set it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sockdiag import _features
from testsupport.children import end

from conftest import requires_linux, requires_root
from test_cgroup import HOLDER, _holder_in, cgroup_dir  # noqa: F401 (a fixture)
from test_kernel_features import doctor_json, real_availability, release, sockdiag

pytestmark = requires_linux

PROFILES = ("4.14", "4.18", "5.4", "5.10")


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
    child, _ = _holder_in(cgroup_dir, HOLDER, "3")
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


@requires_root
@pytest.mark.parametrize("profile", PROFILES)
def test_ifstat_and_export_are_equal_under_every_profile(profile):
    # In a network namespace of their own: this machine's interfaces come and go.
    plain = sockdiag("ifstat", "--once", "--json", in_new_network_namespace=True)
    profiled = sockdiag("ifstat", "--once", "--json", assume=profile, in_new_network_namespace=True)
    assert plain.returncode == profiled.returncode == 0, profiled.stderr
    interfaces = [json.loads(r.stdout)["interfaces"] for r in (plain, profiled)]
    assert list(interfaces[0]) == list(interfaces[1]) == ["lo"]
    assert interfaces[0]["lo"].keys() == interfaces[1]["lo"].keys()
    exported = sockdiag("export", "--once", "--pid", str(os.getpid()), assume=profile)
    assert exported.returncode == 0, exported.stderr
    assert "sockdiag_" in exported.stdout
