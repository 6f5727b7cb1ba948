"""The doctor's report for people (``sockdiag doctor``): one screen to paste."""

from __future__ import annotations

from ..doctor import Diagnosis


def lines(report: Diagnosis) -> list[str]:
    """The report as text lines: kernel, features, privileges, commands."""
    out = [f"kernel: {report.kernel}"
           + (f" (features newer than {report.assumed_kernel} treated as absent: "
              "SOCKDIAG_ASSUME_KERNEL)" if report.assumed_kernel else "")]
    out.append("features (name, since, here):")
    width = max(len(feature.name) for feature in report.features)
    for feature in report.features:
        here = {True: "yes", False: "NO", None: "unknown (cannot be tried with these privileges)"}[
            feature.available]
        out.append(f"  {feature.name:<{width}}  {feature.since:>5}  {here}")
    found = report.privileges
    out.append("privileges:")
    out.append(f"  root: {'yes' if found.root else 'no'}; capabilities: "
               + ", ".join(f"{name} {'yes' if held else 'no'}"
                           for name, held in found.capabilities.items()))
    out.append(f"  tracefs: {found.tracefs_access}" + (f" ({found.tracefs})" if found.tracefs else ""))
    out.append(f"  cgroups: {found.cgroup_version or 'not mounted'}"
               + (f" (cgroup2 at {found.cgroup2_mount})" if found.cgroup2_mount else ""))
    out.append("  yama ptrace_scope: "
               + ("no Yama" if found.yama_ptrace_scope is None else str(found.yama_ptrace_scope))
               + " (sockdiag reads /proc/PID/fd, which Yama does not restrict)")
    out.append("what each command shows here:")
    for command, command_lines in report.commands.items():
        out += [f"  {command}: {line}" for line in command_lines]
    return out
