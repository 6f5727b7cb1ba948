"""Strict parsers for the benchmark's sizes, rates and durations.

Each raises ValueError with a message that fits on one line; the CLI turns
it into a usage error.  Sizes use sockdiag's one size grammar
(``parse_size``: binary multiples, 16k = 16384 bytes, as the kernel's
buffers count), rates are decimal (10mbit = 10,000,000 bit/s,
as tc counts).
"""

from __future__ import annotations

import math
import re
from typing import Optional, Union

from .. import _validate
from .._validate import format_size, parse_size

_RATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(bit|kbit|mbit|gbit)", re.IGNORECASE)
_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(us|ms|s)", re.IGNORECASE)
_DURATION_UNITS_US = {"us": 1, "ms": 1000, "s": 1_000_000}

def _size_or(text: str, word: str, minimum: int) -> Optional[int]:
    if text.strip().lower() == word:
        return None
    value = parse_size(text)
    # TCP_NOTSENT_LOWAT and SO_SNDBUF are C ints in the kernel.
    if not minimum <= value <= _validate.LOWAT_BYTES.maximum:
        raise ValueError(f"{text!r}: must be {word} or from {format_size(minimum)} to 2g - 1")
    return value


def parse_lowat(text: str) -> Union[None, int, str]:
    """A TCP_NOTSENT_LOWAT setting: None for "off", bytes from 1 to 2 GiB - 1,
    or a time target such as "20ms" (kept as that string, in its shortest
    form: LowatTuner sets rate × target)."""
    if _DURATION.fullmatch(text.strip()):
        target_ms = parse_duration_us(text) / 1e3
        try:
            _validate.LOWAT_TARGET_MS.check(target_ms)
        except ValueError:
            raise ValueError(f"{text!r}: a time target must be from 0.1ms to 10s") from None
        return f"{target_ms:g}ms"
    return _size_or(text, "off", 1)


def lowat_target_ms(lowat: Union[None, int, str]) -> Optional[float]:
    """The milliseconds of a time-target lowat ("20ms" -> 20.0); None for off or bytes."""
    return float(lowat[:-2]) if isinstance(lowat, str) else None


def parse_sndbuf(text: str) -> Optional[int]:
    """A send buffer setting: None for "auto" (kernel auto-tuning), else bytes >= 1k."""
    return _size_or(text, "auto", 1024)


def parse_rate(text: str) -> int:
    """Bits per second in tc's notation: "10mbit", "500kbit", "1gbit"; ValueError otherwise."""
    match = _RATE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a rate (examples: 10mbit, 500kbit, 1gbit)")
    bps = float(match.group(1)) * _RATE_UNITS[match.group(2).lower()]
    if not math.isfinite(bps) or not _validate.BENCH_RATE_BPS.minimum <= round(bps) \
            <= _validate.BENCH_RATE_BPS.maximum:
        raise ValueError(f"{text!r}: a rate must be from 8kbit to 100gbit")
    return round(bps)


def parse_duration_us(text: str) -> int:
    """Microseconds in "50ms", "1.5s", "200us" or "0", at most a minute (a path
    delay or a queue's length); ValueError otherwise."""
    if text.strip() == "0":
        return 0
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 50ms, 1s, 200us)")
    us = float(match.group(1)) * _DURATION_UNITS_US[match.group(2).lower()]
    if not math.isfinite(us) or not us <= _validate.BENCH_PATH_DELAY.maximum * 1e6:
        raise ValueError(f"{text!r}: a duration must be at most "
                         f"{_validate.BENCH_PATH_DELAY.maximum:g}s")
    return round(us)


def parse_queue_latency_us(text: str) -> int:
    """parse_duration_us of a queue's length, which must hold some time: a
    queue of none drops every burst, and the run measures only retransmits."""
    us = parse_duration_us(text)
    if us == 0:
        raise ValueError(f"{text!r}: a queue must hold some time (e.g. 50ms)")
    return us
