"""The range of every number sockdiag takes, checked in one place.

The API checks its arguments here at the call (ValueError for a value out
of range, TypeError for a value of the wrong type); the CLI's click types
(cli/options.py) wrap the same ranges, so an option is refused before any
work starts with one line naming it and its range (exit status 2).

Integers refuse floats and bools, as ``socket.setsockopt`` refuses floats:
``1.0`` for an fd or a count is a bug upstream, and ``True`` an accident.
Reals (seconds, ratios) take ints and floats, finite and within range.  Text from the
command line must be ASCII: ``int("١٢")`` is 12 to Python, but a number
that does not read as what it means on the terminal is refused.  Sizes have
one grammar, parse_size's, and one shortest spelling, format_size's.
"""

from __future__ import annotations

import numbers
import operator
import re
from typing import Optional, Union

from ._common import FrozenStruct

C_INT_MAX = 2**31 - 1
U32_MAX = 2**32 - 1
# Counts and byte totals: what a signed 64-bit counter (and Python's
# sys.maxsize, deque's maxlen) can hold.
COUNT_MAX = 2**63 - 1
PID_MAX = 1 << 22  # the kernel's PID_MAX_LIMIT on 64-bit
# A day between two samples: longer is no live view, and a timeout past
# threading.TIMEOUT_MAX or time_t overflows.
DAY_S = 86400.0


# ASCII digits only: "١٢K" is not a size a terminal shows as 12K.
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE | re.ASCII)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Bytes in a size such as "500", "64K", "1.5GiB" (K, M, G, T are powers of 1024).

    The one size grammar of every option.  Raises ValueError with a one-line
    reason for anything else.
    """
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (use e.g. 500, 64K, 10M, 1.5G)")
    number, unit, _suffix = match.groups()
    nbytes = float(number) * _SIZE_UNITS[unit.lower()]
    if nbytes == float("inf"):
        raise ValueError(f"not a size: {text!r} (too large)")
    return int(nbytes)


def format_size(nbytes: Union[None, int, str], none: str = "off") -> str:
    """The shortest exact form of a size: 16384 -> "16k", 1048576 -> "1m"; None -> none;
    a time-target lowat ("20ms") as it is."""
    if nbytes is None:
        return none
    if isinstance(nbytes, str):
        return nbytes
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if nbytes >= unit and nbytes % unit == 0:
            return f"{nbytes // unit}{suffix}"
    return str(nbytes)


def shortened(text: str) -> str:
    """text cut to one short line for a message (a 5,000-digit string stays readable)."""
    return text if len(text) <= 40 else text[:37] + "..."


def _shown(value) -> str:
    return shortened(repr(value))


def _refuse(error: type, name: Optional[str], value, describe: str) -> Exception:
    prefix = f"{name}: " if name else ""
    return error(f"{prefix}{_shown(value)} is not {describe}")


class Integers(FrozenStruct):
    """Integers from minimum to maximum (inclusive), in unit."""

    minimum: int
    maximum: int
    unit: str = ""
    #: click's metavar (upper-cased) for options of this range.
    kind: str = "integer"

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"an integer from {self.minimum} to {self.maximum}{unit}"

    def check(self, value, name: Optional[str] = None) -> int:
        """value as an int; TypeError unless an integer, ValueError out of range."""
        if isinstance(value, (bool, float)) or not hasattr(type(value), "__index__"):
            raise _refuse(TypeError, name, value, self.describe())
        number = operator.index(value)
        if not self.minimum <= number <= self.maximum:
            raise _refuse(ValueError, name, value, self.describe())
        return number

    def parse(self, value, name: Optional[str] = None) -> int:
        """check() of an integer, or of command-line text ("12", " 12 ", "+12")."""
        if not isinstance(value, str):
            return self.check(value, name)
        text = value.strip()
        if not (text.isascii() and text.lstrip("+-").isdigit()) or len(text) > 40:
            raise _refuse(ValueError, name, value, self.describe())
        return self.check(int(text), name)


class Sizes(Integers):
    """Byte counts, written in the one size grammar (500, 64K, 1.5G) on the command line."""

    unit: str = "bytes"
    kind: str = "size"

    def describe(self) -> str:
        return f"a size from {self.minimum} to {self.maximum} bytes (e.g. 500, 64K, 10M, 1.5G)"

    def parse(self, value, name: Optional[str] = None) -> int:
        if not isinstance(value, str):
            return self.check(value, name)
        try:
            nbytes = parse_size(value)
        except ValueError:
            raise _refuse(ValueError, name, value, self.describe()) from None
        if not self.minimum <= nbytes <= self.maximum:
            raise _refuse(ValueError, name, value, self.describe())
        return nbytes


class Reals(FrozenStruct):
    """A finite number of unit (seconds unless told), from minimum (or above it) to maximum."""

    minimum: float
    maximum: float
    minimum_excluded: bool = False
    unit: str = "seconds"
    kind: str = "seconds"

    def describe(self) -> str:
        what = f"a number of {self.unit}" if self.unit else "a number"
        if self.minimum_excluded:
            return f"{what} above {self.minimum:g} and at most {self.maximum:g}"
        return f"{what} from {self.minimum:g} to {self.maximum:g}"

    def check(self, value, name: Optional[str] = None) -> float:
        """value as a float; TypeError unless a real number, ValueError when
        not finite or out of range (comparisons refuse NaN by themselves)."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _refuse(TypeError, name, value, self.describe())
        above = value > self.minimum if self.minimum_excluded else value >= self.minimum
        if not (above and value <= self.maximum):
            raise _refuse(ValueError, name, value, self.describe())
        return float(value)

    def parse(self, value, name: Optional[str] = None) -> float:
        """check() of a number, or of command-line text ("0.5", "2", "1e-2")."""
        if not isinstance(value, str):
            return self.check(value, name)
        try:
            if not value.isascii():
                raise ValueError(value)
            seconds = float(value)
        except ValueError:
            raise _refuse(ValueError, name, value, self.describe()) from None
        try:
            return self.check(seconds, name)
        except ValueError:
            raise _refuse(ValueError, name, value, self.describe()) from None


# --- the ranges ----------------------------------------------------------------

#: A file descriptor you own: the kernel's fds are C ints.
FD = Integers(0, C_INT_MAX, kind="fd")
#: A process id (the kernel never hands out more than PID_MAX_LIMIT).
PID = Integers(1, PID_MAX, kind="pid")
#: A TCP port; 0 for --listen asks the kernel for a free one.
PORT = Integers(0, 65535, kind="port")
#: How many samples, how many kept: at least one.
COUNT = Integers(1, COUNT_MAX, kind="count")
#: An upper bound on series or items: 0 allowed (none).
LIMIT = Integers(0, COUNT_MAX)
#: A byte budget or a file's size bound (compared with the kernel's 64-bit
#: counters): at least a byte, since a budget of none is passed at once.
BYTES = Sizes(1, COUNT_MAX)
#: TCP_NOTSENT_LOWAT: the kernel keeps a u32 (4294967295 is "off").
NOTSENT_LOWAT = Integers(0, U32_MAX, "bytes")
#: The refresh of a live view (watch, top, ifstat, demo): the kernel's
#: counters are read in milliseconds, faster refreshes only burn CPU.
VIEW_INTERVAL = Reals(0.01, DAY_S)
#: The sampling interval of a recording or a traffic sample: any positive time.
SAMPLE_INTERVAL = Reals(0.0, DAY_S, minimum_excluded=True)
#: How long a demo workload (or a benchmark run) lasts.
RUN_DURATION = Reals(1.0, DAY_S)
#: A warm-up, or any other part of a run: zero allowed.
PART_OF_RUN = Reals(0.0, DAY_S)
#: LowatTuner's target: a time target from 0.1 ms to 10 s (bench lowat's --lowat 20ms).
LOWAT_TARGET_MS = Reals(0.1, 10_000.0, unit="milliseconds", kind="milliseconds")
#: TCP_NOTSENT_LOWAT limits a tuner sets: the kernel reads the option as a C int.
LOWAT_BYTES = Integers(1, C_INT_MAX, "bytes", kind="size")
#: LowatTuner's band around the wanted limit, as a fraction of it: past 10
#: (a band of ±1000%) the tuner would never retune.
TOLERANCE = Reals(0.0, 10.0, unit="", kind="fraction")
#: `bench lowat --message-size`: 16 bytes hold its 8-byte stamp and some
#: payload; 64 MiB is 16 times the largest send buffer Linux autotunes to
#: by default (tcp_wmem's 4 MiB): larger messages measure only allocation,
#: and a buffer per flow must fit in memory.
BENCH_MESSAGE_SIZE = Sizes(16, 64 << 20)
#: `bench lowat --rate` in bit/s: tc's TBF from 8 kbit/s to 100 gbit/s.
BENCH_RATE_BPS = Integers(8000, 100 * 10**9, "bit/s")
#: `bench lowat --delay` and `--queue-latency`: netem delays and TBF queue
#: limits of a shaped path, up to a minute.
BENCH_PATH_DELAY = Reals(0.0, 60.0)
#: `bench rcvbuf --rcvbuf`: a C int, which the kernel doubles; below 1 KiB
#: it grants its own minimum whatever is asked.
BENCH_RCVBUF = Sizes(1024, C_INT_MAX // 2)
#: `bench rcvbuf --datagram-size`: room for the 16-byte stamp, up to UDP's IPv4 maximum.
BENCH_DATAGRAM_SIZE = Sizes(16, 65507)
#: `bench rcvbuf --burst`: datagrams sent back to back.
BENCH_BURST = Integers(1, 100_000, "datagrams")
#: `bench rcvbuf --duration`: seconds of bursts per size (a fifth of a
#: second holds a few bursts; the queue is drained after).
BENCH_RCVBUF_DURATION = Reals(0.2, 600.0)


def listen_address(address: str) -> tuple[str, int]:
    """(host, port) of "HOST:PORT" or "[IPv6]:PORT"; ValueError when malformed."""
    host, sep, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep or not host or not (port_text.isascii() and port_text.isdigit()):
            raise ValueError(address)
        port = PORT.parse(port_text)
    except ValueError:
        raise ValueError(
            f"listen address {_shown(address)} is not HOST:PORT with a port from 0 to 65535 "
            "(e.g. 127.0.0.1:9977, or 0.0.0.0:9977 / [::]:9977 for every address)") from None
    return host, port
