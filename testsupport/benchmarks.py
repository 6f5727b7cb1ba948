"""Timing helpers of the benches in bench/."""

from __future__ import annotations


def per_call(benchmark, function, *args, iterations: int = 1, rounds: int = 20) -> float:
    """Median seconds per call of function(*args).

    ``iterations`` > 1 times batches of calls, so that the timer's own cost
    is spread over them (calls of a microsecond).
    """
    benchmark.pedantic(function, args, iterations=iterations, rounds=rounds, warmup_rounds=2)
    return benchmark.stats.stats.median


def process_environment() -> dict[str, str]:
    """The environment of timed whole processes: this one's, with bytecode
    caching on (a user's installed package has its .pyc files; compiling
    every module at each start would be timed otherwise)."""
    import os

    return {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def paired_process_medians(commands: dict[str, list[str]], rounds: int = 21,
                           warmup_rounds: int = 2) -> dict[str, tuple[float, float]]:
    """{name: (median wall seconds, median CPU seconds)} of each command run
    as a whole process (CPU: its user + system time, less disturbed than the
    wall time by the other work of a shared machine).

    The commands are run in turn within each round (paired), so that every
    median is taken under the same load; output goes to /dev/null.  A
    command that fails raises CalledProcessError.
    """
    import resource
    import statistics
    import subprocess
    import time

    def cpu_s() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    env = process_environment()
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(warmup_rounds + rounds):
        for name, argv in commands.items():
            cpu_before, started = cpu_s(), time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, env=env)
            if round_number >= warmup_rounds:
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(cpu_s() - cpu_before)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in commands}


def importtime_top(argv: list[str], top: int = 12, runs: int = 5) -> list[str]:
    """`python -X importtime`'s top entries for argv (a Python command line
    whose first item is the interpreter): each module's least self time
    over runs, largest first, with its cumulative time."""
    import subprocess

    env = process_environment()
    self_us: dict[str, int] = {}
    cumulative_us: dict[str, int] = {}
    for _ in range(runs):
        result = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, check=True, env=env)
        for line in result.stderr.splitlines():
            fields = line.removeprefix("import time:").split("|")
            if len(fields) != 3 or not fields[0].strip().isdigit():
                continue
            name = fields[2].strip()
            own, total = int(fields[0]), int(fields[1])
            self_us[name] = min(self_us.get(name, own), own)
            cumulative_us[name] = min(cumulative_us.get(name, total), total)
    ranked = sorted(self_us, key=self_us.get, reverse=True)[:top]
    return [f"{self_us[name] / 1e3:7.2f} ms self {cumulative_us[name] / 1e3:8.2f} ms cumulative  {name}"
            for name in ranked] + [f"{sum(self_us.values()) / 1e3:7.2f} ms self in all {len(self_us)} modules"]
