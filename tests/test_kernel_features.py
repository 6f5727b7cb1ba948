"""Kernel features and `sockdiag doctor`, on whatever kernel runs the tests
(the kernel lane runs them under 6.1 and 6.12 too).  The older fleets'
profiles (SOCKDIAG_ASSUME_KERNEL) are tested in test_kernel_profiles.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sockdiag import _features

from conftest import requires_linux
from unprivileged import run_unprivileged

pytestmark = requires_linux

SOCKDIAG = [sys.executable, "-c", "from sockdiag.cli import main; main()"]


def release(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def sockdiag(*args: str, assume: str | None = None,
             in_new_network_namespace: bool = False) -> subprocess.CompletedProcess:
    """`sockdiag args...` in a child, SOCKDIAG_ASSUME_KERNEL=assume (unset: None)."""
    environment = {k: v for k, v in os.environ.items() if k != _features.ASSUME_KERNEL}
    if assume is not None:
        environment[_features.ASSUME_KERNEL] = assume
    command = [*SOCKDIAG, *args]
    if in_new_network_namespace:
        command = ["unshare", "--net", *command]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300)


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


def test_cgroup_filter_is_absent_under_4_18():
    features = {f["name"]: f for f in doctor_json("4.18")["features"]}
    assert features["inet_diag_cgroup_filter"]["available"] is False
    assert features["inet_diag_cgroup_filter"]["since"] == "5.8"


def test_tcp_info_features_name_the_release_of_their_field():
    growth = dict((field, since) for since, field in _features.TCP_INFO_GROWTH)
    since = {f.name: f.since for f in _features.kernel_features()}
    assert since["tcp_info_notsent_bytes"] == "%d.%d" % growth["notsent_bytes"]
    assert since["tcp_info_delivery_rate"] == "%d.%d" % growth["delivery_rate_bps"]
    assert since["tcp_info_bytes_sent"] == "%d.%d" % growth["bytes_sent"]


def test_capabilities_and_cgroup_layout_parse_synthetic_text():
    from sockdiag._linux import effective_capabilities
    from sockdiag.doctor import cgroup_layout

    assert effective_capabilities("Name:\tx\nCapEff:\t0000000000001000\n") == 1 << 12
    assert effective_capabilities("CapEff:\tzz\n") == effective_capabilities("") == 0
    v2 = "cgroup2 /sys/fs/cgroup cgroup2 rw 0 0\n"
    hybrid = "cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0\ncgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
    assert cgroup_layout(v2) == ("v2", "/sys/fs/cgroup")
    assert cgroup_layout(hybrid) == ("hybrid", "/sys/fs/cgroup/unified")
    assert cgroup_layout("cgroup /sys/fs/cgroup/memory cgroup rw 0 0\n") == ("v1", None)
    assert cgroup_layout("garbage\n\0\n") == (None, None)
