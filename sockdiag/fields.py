"""What each quantity is, once: label, unit, rate or not, JSON key, formatter.

One table per kind of struct (glances' per-metric metadata): ``SOCKET_FIELDS``
(``watch``), ``TRAFFIC_FIELDS`` (``top``), ``INTERFACE_FIELDS``
(``ifstat``); ``export`` takes its metric names and help texts from the
same entries, pictures (``sockdiag plot``, ``Recording.plot``) their
titles, units and scales, ``Recording.to_csv`` its columns (``SAMPLE_FIELDS``).
Views choose which fields they show and in what order; the JSON of every
view has the fields with a JSON key, in table order (``json_object``), and
a detail view every field as its column shows it (``detail_values``).

The formatters are one family with one rule:

* socket buffers and per-process traffic (``watch``, ``top``): bytes and
  bytes/s in powers of 1024 with one-letter units, ``45.2K``, ``3.6M``, as
  the kernel sizes its buffers;
* interface counters (``ifstat``): bytes, bytes/s and packets/s in powers of
  1000 with SI units, ``1.5 MB/s``, ``12.3k``, as networks count;
* durations: ``350us``, ``12.5ms``, ``2.1s``;
* the benches' measured figures (``bench lowat``, ``bench rcvbuf``): fixed
  decimals with thousands separators, ``1,234.56``.

An absent value (unknown, or a rate on the first sample) is ``-`` in every one.

Rates are stored in the unit they are shown in (bytes/s), never bits/s.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Optional, Sequence

from ._common import FrozenStruct

ABSENT = "-"  # no value (unknown, or a rate on the first sample): never a fake 0

_BINARY_UNITS = ("", "K", "M", "G")
_DECIMAL_PREFIXES = ("", "k", "M", "G", "T")


def _scaled(value: float, base: int, prefixes: tuple[str, ...]) -> tuple[float, str]:
    """value in the largest unit base**k (k < len(prefixes)) it reaches."""
    prefix = prefixes[0]
    for prefix in prefixes:
        if abs(value) < base or prefix == prefixes[-1]:
            break
        value /= base
    return value, prefix


def format_bytes(n: Optional[float]) -> str:
    """Bytes (or bytes/s) for people: 812, 45.2K, 3.6M, 128K (powers of 1024); "-" for unknown."""
    if n is None:
        return ABSENT
    n = round(n)
    value, unit = _scaled(n, 1024, _BINARY_UNITS)
    return f"{value:.1f}".removesuffix(".0") + unit if unit else str(n)


def format_bytes_per_s(rate: Optional[float]) -> str:
    """A rate in bytes/s for people: 45.2K/s (powers of 1024); "-" for unknown."""
    return ABSENT if rate is None else format_bytes(rate) + "/s"


def format_decimal(value: Optional[float], unit: str = "B") -> str:
    """Bytes in decimal units, as networks count them ("1.5 MB", "3.5 MB/s"); "-" for None."""
    if value is None:
        return ABSENT
    value, prefix = _scaled(value, 1000, _DECIMAL_PREFIXES)
    return f"{value:.0f} {unit}" if not prefix else f"{value:.1f} {prefix}{unit}"


def format_count(count: Optional[float]) -> str:
    """A count (or count/s) in decimal units ("12.3k"); "-" for None."""
    if count is None:
        return ABSENT
    value, prefix = _scaled(count, 1000, _DECIMAL_PREFIXES)
    return f"{value:.0f}" if not prefix else f"{value:.1f}{prefix}"


def format_seconds(seconds: Optional[float]) -> str:
    """A duration for people: 0, 350us, 12.5ms, 2.1s; "-" for unknown."""
    if seconds is None:
        return ABSENT
    if seconds == 0:
        return "0"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    return f"{seconds:.1f}s"


def format_queue_delay(delay_basis_stalled: tuple) -> str:
    """Q-DELAY's text: the delay, or "STALLED 12s" while nothing is acknowledged."""
    delay, basis, stalled_s = delay_basis_stalled
    if basis == "stalled":
        return f"STALLED {format_seconds(stalled_s)}"
    return format_seconds(delay)


def format_figure(value: Optional[float], digits: int = 1, scale: float = 1.0) -> str:
    """A bench's measured figure, value / scale, with digits decimals: 1,234.56; "-" for unknown."""
    return ABSENT if value is None else f"{value / scale:,.{digits}f}"


def figure_table(columns: Sequence[tuple[str, Callable[[Any], str]]], results: Iterable, *,
                 left_aligned: Sequence[str] = ()) -> str:
    """A bench's results as a table for people: a row per result, a column per
    (header, cell) pair, right-aligned but for the left_aligned headers."""
    from tabulate import tabulate  # only a table needs it

    headers = [header for header, _ in columns]
    rows = [[cell(result) for _, cell in columns] for result in results]
    return tabulate(rows, headers=headers, disable_numparse=True,
                    colalign=["left" if header in left_aligned else "right" for header in headers])


# LIMIT's text: short enough for the table, plain enough to read.
SHORT_LIMITS = {"receiver": "receiver", "network": "network", "sender_buffer": "sndbuf",
                "application": "app", None: ABSENT}


def _count_per_s(rate: Optional[float]) -> str:
    return ABSENT if rate is None else format_count(rate)


# The longest address a table shows whole: a UNIX path is cut from the left.
_ENDPOINT_WIDTH = 40


def _endpoint_text(text: Optional[str]) -> str:
    if text is None:
        return ABSENT
    return text if len(text) <= _ENDPOINT_WIDTH else "…" + text[-(_ENDPOINT_WIDTH - 1):]


def _bits_as_bytes_per_s(bps: Optional[int]) -> str:
    return format_bytes_per_s(None if bps is None else bps / 8)


def _microseconds(us: Optional[int]) -> str:
    return format_seconds(None if us is None else us / 1e6)


def _plain(value: Any) -> str:
    return ABSENT if value is None else str(value)


def _rx_tx(pair: tuple) -> str:
    return "/".join(map(_plain, pair))


# ss's short names in the table, so that narrow screens keep more columns.
SHORT_STATES = {"ESTABLISHED": "ESTAB", "FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT2": "FIN-WAIT-2",
                "SYN_SENT": "SYN-SENT", "SYN_RECV": "SYN-RECV", "CLOSE_WAIT": "CLOSE-WAIT",
                "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT"}


class Field(FrozenStruct):
    """One quantity of a item, as views and exporters show it.

    ``name``: the item's attribute; ``"tcp.rtt_us"`` for one of its
    TcpInfo's, ``"rates.x"`` for one of the rates between two samples,
    ``"a/b"`` for two attributes shown together.  ``label``: the column
    header (None: no table shows it).  ``unit``: "bytes", "bytes/s",
    "packets/s", "s", "us" or "" (a count or a name).  ``is_rate``: a
    per-second rate between two samples (absent on the first).
    ``json_key``: its key in ``--json`` (None: not in it).  ``format``: the
    table's text for a value.  ``metric``: the Prometheus name between
    ``sockdiag_<kind>_`` and the unit, ``help`` its description.
    ``sort``: the name ``--sort`` and the ``<`` ``>`` keys give it (None: not
    a sort key); ``ascending``: names and numbers in order rather than
    quantities largest first; ``sort_value``: what is compared, when not the
    value itself (item, rates) -> value.  ``history``: the label of its
    sparkline in the detail view (None: no history kept).  ``plot_unit``:
    the unit pictures draw it in (one of ``PLOT_UNITS``, a rate's ending in
    "/s"; None: not drawn); ``plot``: the title of its panel in ``sockdiag
    plot`` (None: no panel of its own).
    """

    name: str
    label: Optional[str]
    unit: str
    is_rate: bool
    json_key: Optional[str]
    format: Callable[[Any], str] = _plain
    metric: Optional[str] = None
    help: str = ""
    sort: Optional[str] = None
    ascending: bool = False
    sort_value: Optional[Callable[[Any, Any], Any]] = None
    history: Optional[str] = None
    plot_unit: Optional[str] = None
    plot: Optional[str] = None

    def value(self, item: Any, rates: Any = None) -> Any:
        """The field's value in item (rates: the item of rates between two samples)."""
        if "/" in self.name:
            return tuple(getattr(item, name) for name in self.name.split("/"))
        head, _, tail = self.name.partition(".")
        if head == "rates":
            return None if rates is None else getattr(rates, tail)
        value = getattr(item, head)
        return getattr(value, tail) if tail and value is not None else value

    def cell(self, item: Any, rates: Any = None) -> str:
        """The field's text in a table row."""
        return self.format(self.value(item, rates))

    def plotted(self, value: Optional[float]) -> float:
        """A value of the field in its plot_unit; NaN (a gap in the line) for None."""
        if value is None:
            return math.nan
        return value * _unit_size(self.unit) / _unit_size(self.plot_unit)


# The units a picture's axis can be in, as multiples of a byte or a second.
PLOT_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024 ** 2, "kB": 1000, "s": 1, "ms": 1e-3, "us": 1e-6}


def _unit_size(unit: str) -> float:
    return PLOT_UNITS[unit.removesuffix("/s")]


def sort_keys(fields: Sequence[Field]) -> tuple[str, ...]:
    """The sort names of fields, in table order: ``--sort``'s choices and what
    the < > keys move through."""
    return tuple(field.sort for field in fields if field.sort is not None)


def sorted_items(items: Iterable[Any], fields: Sequence[Field], key: str,
                   rates: Callable[[Any], Any] = lambda item: None) -> list:
    """items by the field whose sort is key: quantities largest first, names
    and numbers marked ascending in order; an unknown value (None) last; ties
    keep the order given.  rates(item): the item's rates, for rate fields.
    KeyError for a key no field sorts by."""
    field = next((f for f in fields if f.sort == key), None)
    if field is None:
        raise KeyError(key)
    get = field.sort_value or field.value
    keyed = [(get(item, rates(item)), item) for item in items]
    present = [pair for pair in keyed if pair[0] is not None]
    present.sort(key=lambda pair: pair[0], reverse=not field.ascending)
    return [item for _, item in present] + [item for value, item in keyed if value is None]


def detail_values(fields: Sequence[Field], item: Any, rates: Any = None) -> list[tuple[str, str]]:
    """A detail view's (name, text) pairs: every field with a label (else a JSON
    key), in table order, formatted as the table formats it."""
    return [(field.label or field.json_key, field.cell(item, rates)) for field in fields
            if (field.label or field.json_key) is not None]


def json_object(fields: Sequence[Field], item: Any, rates: Any = None) -> dict[str, Any]:
    """item's ``--json`` object: every field with a JSON key, its value, in table order."""
    return {field.json_key: field.value(item, rates) for field in fields if field.json_key is not None}


def history_fields(fields: Sequence[Field]) -> tuple[Field, ...]:
    """The fields whose values the detail view keeps as sparklines, in table order."""
    return tuple(field for field in fields if field.history is not None)


def columns(fields: tuple[Field, ...], labels: tuple[str, ...]) -> tuple[Field, ...]:
    """The fields of a table's columns, in the order of labels (KeyError for an unknown label)."""
    by_label = {field.label: field for field in fields if field.label is not None}
    return tuple(by_label[label] for label in labels)


def row(fields: tuple[Field, ...], item: Any, rates: Any = None) -> tuple[str, ...]:
    """A table row: each field's text for item (and its rates)."""
    return tuple(field.cell(item, rates) for field in fields)


# A socket of a process (SocketInfo: TCP, UDP or UNIX), and its rates (watch's SocketRates).
SOCKET_FIELDS = (
    Field("fd", "FD", "", False, "fd", sort="fd", ascending=True),
    Field("kind", "KIND", "", False, "kind", sort="kind", ascending=True),
    Field("socket_type", None, "", False, "socket_type"),
    Field("family", None, "", False, "family"),
    # A UNIX socket's address is a path (or None), its port None.
    Field("local", "LOCAL", "", False, "local", _endpoint_text, sort="local", ascending=True,
          sort_value=lambda s, _: (s.local_address or "", s.local_port or 0)),
    Field("remote", "REMOTE", "", False, "remote", _endpoint_text, sort="remote", ascending=True,
          sort_value=lambda s, _: (s.remote_address or "", s.remote_port or 0)),
    Field("state", "STATE", "", False, "state", lambda state: SHORT_STATES.get(state, state),
          sort="state", ascending=True),
    Field("unacked", "UNACKED", "bytes", False, "unacked", format_bytes, "unacked",
          "Bytes sent but not yet acknowledged by the peer.", sort="unacked", history="UNACKED",
          plot_unit="KiB", plot="unacked (per connection)"),
    Field("unsent", "UNSENT", "bytes", False, "unsent", format_bytes, "unsent",
          "Bytes written by the application, not yet sent.", sort="unsent", history="UNSENT",
          plot_unit="KiB", plot="unsent (per connection)"),
    Field("free", "FREE", "bytes", False, "free", format_bytes, "send_buffer_free",
          "Bytes the send buffer accepts before a writer blocks.", sort="free", plot_unit="KiB"),
    Field("sndbuf", "SNDBUF", "bytes", False, "sndbuf", format_bytes, sort="sndbuf", plot_unit="KiB"),
    Field("send_queue", None, "bytes", False, "send_queue", format_bytes, "send_queue",
          "Bytes the kernel holds to send: unacked + unsent (ss's Send-Q).", sort="send-q"),
    Field("recv_queue", "RECV-Q", "bytes", False, "recv_queue", format_bytes, "receive_queue",
          "Bytes received, not yet read by the application.", sort="recv-q", history="RECV-Q"),
    Field("rcvbuf", None, "bytes", False, "rcvbuf", format_bytes),
    Field("drops", None, "", False, "drops", sort="drops", history="DROPS"),
    Field("rates.drops_per_s", "DROPS/s", "drops/s", True, None, _count_per_s),
    Field("backlog_limit", None, "", False, "backlog_limit"),
    Field("peer_inode", None, "", False, "peer_inode"),
    Field("queue_delay_s", None, "s", False, "queue_delay_s", format_seconds, "queue_delay",
          "How long a byte written now waits before it is sent: unsent over the rate the queue drains.",
          history="Q-DELAY", plot_unit="ms", plot="queue delay: unsent / the rate it drains"),
    Field("queue_delay_basis", None, "", False, "queue_delay_basis"),
    Field("stalled_s", "STALLED", "s", False, "stalled_s", format_seconds),
    # A stalled queue waits longest of all.
    Field("queue_delay_s/queue_delay_basis/stalled_s", "Q-DELAY", "s", False, None, format_queue_delay,
          sort="delay",
          sort_value=lambda s, _: math.inf if s.queue_delay_basis == "stalled" else s.queue_delay_s),
    Field("limited_by", "LIMIT", "", False, "limited_by", SHORT_LIMITS.__getitem__, sort="limit",
          ascending=True),
    Field("congestion", None, "", False, "congestion"),
    Field("tcp.rtt_us", "RTT", "us", False, "rtt_us", _microseconds, sort="rtt", history="RTT",
          plot_unit="ms", plot="smoothed RTT"),
    Field("tcp.snd_cwnd_segs", None, "", False, "snd_cwnd_segs"),
    Field("tcp.delivery_rate_bps", None, "bit/s", False, "delivery_rate_bps", _bits_as_bytes_per_s,
          history="DELIVERY RATE"),
    Field("tcp.total_retrans", None, "", False, "total_retrans"),
    Field("tcp.bytes_sent", None, "bytes", False, "bytes_sent"),
    Field("tcp.bytes_acked", None, "bytes", False, "bytes_acked"),
    Field("tcp.bytes_received", None, "bytes", False, "bytes_received"),
    Field("rates.ack_bytes_per_s", "ACKED/s", "bytes/s", True, None, format_bytes),
)

# Per-process TCP traffic (ProcessTraffic): rates over the interval, totals since the start.
TRAFFIC_FIELDS = (
    # Sent plus received in the interval: top's default order.
    Field("sent_bytes/received_bytes", None, "bytes", False, None, sort="total",
          sort_value=lambda r, _: (r.sent_bytes or 0) + (r.received_bytes or 0)),
    # The unattributed row (no pid) first.
    Field("pid", "PID", "", False, "pid", sort="pid", ascending=True,
          sort_value=lambda r, _: -1 if r.pid is None else r.pid),
    Field("name", "NAME", "", False, "name", lambda name: name or "?", sort="name", ascending=True,
          sort_value=lambda r, _: r.name or ""),
    Field("connections", "CONNS", "", False, "connections", sort="connections", history="CONNS"),
    Field("closed", "CLOSED", "", False, "closed"),
    Field("sent_bytes_per_s", "SENT/s", "bytes/s", True, "sent_bytes_per_s", format_bytes, sort="sent",
          history="SENT/s", plot_unit="KiB/s", plot="sent per process (retransmissions included)"),
    Field("received_bytes_per_s", "RECV/s", "bytes/s", True, "received_bytes_per_s", format_bytes,
          sort="received", history="RECV/s", plot_unit="KiB/s", plot="received per process"),
    Field("acked_bytes_per_s", "ACKED/s", "bytes/s", True, "acked_bytes_per_s", format_bytes,
          sort="acked"),
    Field("retrans_bytes_per_s", "RETRANS/s", "bytes/s", True, "retrans_bytes_per_s", format_bytes,
          sort="retrans", history="RETRANS/s"),
    # In the interval.
    Field("sent_bytes", None, "bytes", False, "sent_bytes", format_bytes),
    Field("acked_bytes", None, "bytes", False, "acked_bytes", format_bytes),
    Field("received_bytes", None, "bytes", False, "received_bytes", format_bytes),
    Field("retrans_bytes", None, "bytes", False, "retrans_bytes", format_bytes),
    # Since the start.
    Field("total_sent_bytes", "SENT", "bytes", False, "total_sent_bytes", format_bytes,
          plot_unit="MiB", plot="sent since the start, per process"),
    Field("total_acked_bytes", None, "bytes", False, "total_acked_bytes", format_bytes),
    Field("total_received_bytes", "RECV", "bytes", False, "total_received_bytes", format_bytes,
          plot_unit="MiB", plot="received since the start, per process"),
    Field("total_retrans_bytes", None, "bytes", False, "total_retrans_bytes", format_bytes),
    Field("limited_receiver", None, "", False, "limited_receiver"),
    Field("limited_network", None, "", False, "limited_network"),
    Field("limited_sender_buffer", None, "", False, "limited_sender_buffer"),
    Field("limited_receiver/limited_network/limited_sender_buffer", "WAIT rcv/net/buf", "", False, None,
          lambda counts: "/".join(map(str, counts))),
    Field("stalled", "STALLED", "", False, "stalled"),
    Field("udp_drops", None, "", False, "udp_drops"),
    Field("udp_drops_per_s", "UDP DROPS/s", "drops/s", True, "udp_drops_per_s", _count_per_s, sort="drops",
          history="UDP DROPS/s"),
    Field("udp_receive_fill", "UDP RQ", "", False, "udp_receive_fill",
          lambda fill: ABSENT if fill is None else f"{fill:.0%}", sort="udp-rq"),
)

# A network interface (InterfaceCounters), and its rates (InterfaceRates).
INTERFACE_FIELDS = (
    # The kernel's order.
    Field("index", None, "", False, "index", sort="index", ascending=True,
          sort_value=lambda c, _: (c.index is None, c.index or 0, c.name)),
    Field("name", "IFACE", "", False, None, sort="IFACE", ascending=True),
    Field("is_up", "STATE", "", False, "is_up",
          lambda up: {True: "up", False: "down", None: ABSENT}[up]),
    Field("mtu", "MTU", "bytes", False, "mtu", _plain),
    Field("rates.rx_bytes_per_s", "RX/s", "bytes/s", True, "rx_bytes_per_s",
          lambda rate: format_decimal(rate, "B/s"), sort="RX/s", history="RX/s",
          plot_unit="kB/s", plot="received per interface"),
    Field("rates.tx_bytes_per_s", "TX/s", "bytes/s", True, "tx_bytes_per_s",
          lambda rate: format_decimal(rate, "B/s"), sort="TX/s", history="TX/s",
          plot_unit="kB/s", plot="sent per interface"),
    Field("rates.rx_packets_per_s", "RX pkt/s", "packets/s", True, "rx_packets_per_s", format_count,
          sort="RX pkt/s", history="RX pkt/s"),
    Field("rates.tx_packets_per_s", "TX pkt/s", "packets/s", True, "tx_packets_per_s", format_count,
          sort="TX pkt/s", history="TX pkt/s"),
    Field("rx_bytes", "RX total", "bytes", False, "rx_bytes", format_decimal, "receive",
          "Bytes received by the interface.", sort="RX total"),
    Field("tx_bytes", "TX total", "bytes", False, "tx_bytes", format_decimal, "transmit",
          "Bytes sent by the interface.", sort="TX total"),
    Field("rx_packets", None, "packets", False, "rx_packets", format_count, "receive",
          "Packets received by the interface."),
    Field("tx_packets", None, "packets", False, "tx_packets", format_count, "transmit",
          "Packets sent by the interface."),
    Field("rx_errors", None, "errors", False, "rx_errors", _plain, "receive",
          "Receive errors of the interface."),
    Field("tx_errors", None, "errors", False, "tx_errors", _plain, "transmit",
          "Transmit errors of the interface."),
    Field("rx_drops", None, "drops", False, "rx_drops", _plain, "receive",
          "Received packets dropped."),
    Field("tx_drops", None, "drops", False, "tx_drops", _plain, "transmit",
          "Packets dropped on transmit."),
    Field("rx_errors/tx_errors", "ERR rx/tx", "", False, None, _rx_tx),
    Field("rx_drops/tx_drops", "DROP rx/tx", "", False, None, _rx_tx),
    Field("counters_note", None, "", False, "counters_note"),
)


def named(fields: Sequence[Field], *names: str) -> tuple[Field, ...]:
    """The entries of a table with these names, in that order (KeyError for an unknown name)."""
    by_name = {field.name: field for field in fields}
    return tuple(by_name[name] for name in names)


_SOCKET_FIELD = {field.name: field for field in SOCKET_FIELDS}

# A sample of a Recording (sockdiag.record): its CSV columns (by JSON key) and
# picture.  Its send buffer is a socket's, its size SO_SNDBUF.
SAMPLE_FIELDS = (
    Field("time_s", None, "s", False, "time_s"),
    _SOCKET_FIELD["sndbuf"].replace(name="size", label="SIZE", json_key="size", sort=None),
    *named(SOCKET_FIELDS, "unacked", "unsent", "free", "queue_delay_s", "limited_by", "stalled_s"),
)


def sample_fields(tcp_names: Sequence[str]) -> tuple[Field, ...]:
    """The fields of a Recording's samples with the TcpInfo attributes tcp_names:
    SAMPLE_FIELDS, then each attribute's ``tcp.`` entry of SOCKET_FIELDS (a plain
    number named as the attribute for those it lacks)."""
    return SAMPLE_FIELDS + tuple(
        _SOCKET_FIELD["tcp." + name].replace(name=name) if "tcp." + name in _SOCKET_FIELD
        else Field(name, None, "", False, name)
        for name in tcp_names)


# (JSON key, SocketInfo attribute, TcpInfo attribute or None): what _fast.json_objects
# writes for each socket of `watch --json`.
SOCKET_JSON_FIELDS = tuple(
    (field.json_key, *field.name.split(".")) if "." in field.name else (field.json_key, field.name, None)
    for field in SOCKET_FIELDS if field.json_key is not None)

SOCKET_SORTS = sort_keys(SOCKET_FIELDS)
TRAFFIC_SORTS = sort_keys(TRAFFIC_FIELDS)
INTERFACE_SORTS = sort_keys(INTERFACE_FIELDS)
