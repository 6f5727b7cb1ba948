"""Timing helpers of the benches in bench/."""

from __future__ import annotations


def per_call(benchmark, function, *args, iterations: int = 1, rounds: int = 20) -> float:
    """Median seconds per call of function(*args).

    ``iterations`` > 1 times batches of calls, so that the timer's own cost
    is spread over them (calls of a microsecond).
    """
    benchmark.pedantic(function, args, iterations=iterations, rounds=rounds, warmup_rounds=2)
    return benchmark.stats.stats.median
