"""Structs and constants shared by every platform module.

Structs are frozen, slotted classes on one base, FrozenStruct.  A value a
platform cannot supply is ``None``, never a fake ``0``.  snapshot_drain is
one look's queue delay, the Python twin of includes/compat.h's.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from ._exceptions import NotSupported

LINUX = sys.platform.startswith("linux")
MACOS = sys.platform == "darwin"

# Linux TCP states, numbered as in include/net/tcp_states.h.
TCP_STATES = (
    None,
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
    "BOUND_INACTIVE",
)

# Socket types as Linux numbers them (SOCK_STREAM 1 ... SOCK_SEQPACKET 5).
SOCKET_TYPES = (None, "stream", "dgram", "raw", "rdm", "seqpacket")

# Linux congestion-avoidance states (tcpi_ca_state), enum tcp_ca_state.
TCP_CA_STATES = ("Open", "Disorder", "CWR", "Recovery", "Loss")


def tcp_state_name(number: int) -> str:
    """Name of a Linux TCP state number ("ESTABLISHED"), or "UNKNOWN(n)"."""
    if 0 < number < len(TCP_STATES):
        return TCP_STATES[number]  # type: ignore[return-value]
    return f"UNKNOWN({number})"


def parse_tcp_state(text: str) -> str:
    """The struct spelling of a TCP state name: "syn-sent" -> "SYN_SENT".

    ValueError for a name that is not a TCP state.
    """
    name = text.upper().replace("-", "_")
    if name not in TCP_STATES[1:]:
        raise ValueError(f"unknown TCP state {text!r} (known: {', '.join(TCP_STATES[1:])})")
    return name


# Why a socket's bytes wait (limited_by), and where its queue delay comes from
# or why it is unknown (queue_delay_basis); docs/queue-delay.md.  In the order
# of includes/compat.h's SD_LIMIT_* and SD_BASIS_*.
LIMITS = (None, "application", "receiver", "network", "sender_buffer")
QUEUE_DELAY_BASES = (None, "empty", "delivery_rate", "acked_rate", "no_tcp_info", "receiver_limited",
                     "sender_limited", "app_limited_rate", "no_rate", "stalled")
# One look's delivery rate is not trusted once the receiver- or sender-limited
# time reaches 1/LIMITED_SHARE of the busy time (SD_LIMITED_SHARE).
LIMITED_SHARE = 10


def snapshot_drain(unsent: Optional[int], unacked: Optional[int], free: Optional[int],
                   tcp: Optional["TcpInfo"]
                   ) -> tuple[Optional[float], Optional[str], Optional[str], Optional[float]]:
    """(queue_delay_s, limited_by, queue_delay_basis, stalled_s) from one look at a socket.

    The pure-Python twin of includes/compat.h's sd_snapshot_drain (the rules
    are in docs/queue-delay.md).  With nothing unsent the delay is 0; else it
    is unsent / the kernel's delivery rate, and only while that rate is a fair
    estimate of the drain: not app-limited, the peer's window not full, and
    less than a tenth of the busy time receiver- or sender-limited.
    macOS has no delivery rate: its send-bandwidth estimate stands in.
    A socket with nothing unsent is not stalled; one look cannot time a
    stall of one with bytes unsent (stalled_s None).
    """
    if unsent is None:
        return None, None, None, None
    if unsent == 0:
        return 0.0, "sender_buffer" if free == 0 else "application", "empty", 0.0
    if tcp is None:
        return None, None, "no_tcp_info", None
    limited_by = None
    window_full = (tcp.snd_wnd is not None and tcp.snd_mss is not None
                   and tcp.snd_wnd < (unacked or 0) + tcp.snd_mss)
    if (tcp.probes or 0) > 0 or window_full:
        limited_by = "receiver"
    elif tcp.snd_cwnd_segs and tcp.unacked_segs is not None and tcp.unacked_segs >= tcp.snd_cwnd_segs:
        limited_by = "network"
    busy = tcp.busy_time_us or 0
    rate_bps = tcp.delivery_rate_bps if tcp.delivery_rate_bps is not None else tcp.snd_bw_bps
    if limited_by == "receiver" or (busy and (tcp.rwnd_limited_us or 0) * LIMITED_SHARE >= busy):
        return None, limited_by, "receiver_limited", None
    if busy and (tcp.sndbuf_limited_us or 0) * LIMITED_SHARE >= busy:
        return None, limited_by, "sender_limited", None
    if tcp.delivery_rate_app_limited:
        return None, limited_by, "app_limited_rate", None
    if not rate_bps:
        return None, limited_by, "no_rate", None
    return unsent / (rate_bps / 8), limited_by, "delivery_rate", None


# --- structs -----------------------------------------------------------------


class FrozenStructError(AttributeError):
    """An attempt to set or delete a field of a struct: structs are frozen."""


class _FrozenStructType(type):
    """The metaclass of structs.

    A class body's annotated names are the struct's fields, after its
    base's, in order; each is a slot, and a value given in the body is its
    default (a base's field annotated again takes a new default).  Nothing
    is compiled when a class is defined (dataclass's generated methods cost
    a CLI start 13 ms, and their module ``inspect`` as much again): the
    methods are FrozenStruct's, and only __init__ is compiled, for a class, when
    Python first builds one of its structs (the core fills structs' slots
    itself and never calls it).
    """

    def __new__(mcls, name, bases, namespace):
        annotated = tuple(namespace.get("__annotations__", ()))
        inherited = getattr(bases[0], "_fields", ()) if bases else ()
        # A base's field annotated again only gets a new default.
        own = tuple(field for field in annotated if field not in inherited)
        defaults = {field: namespace.pop(field) for field in annotated if field in namespace}
        namespace["__slots__"] = own
        cls = super().__new__(mcls, name, bases, namespace)
        cls._fields = inherited + own
        cls._defaults = {**getattr(cls, "_defaults", {}), **defaults}
        if any(field not in cls._defaults for field in cls._fields[len(cls._fields) - len(cls._defaults):]):
            raise TypeError(f"{name}: a field without a default follows one with a default")
        if "__init__" not in namespace:
            cls.__init__ = _init_compiled_on_first_use(cls)
        return cls


def _init_compiled_on_first_use(cls):
    def __init__(self, *args, **kwargs):
        cls.__init__ = _compiled_init(cls)
        cls.__init__(self, *args, **kwargs)
    return __init__


def _compiled_init(cls):
    """cls's __init__: each field an argument (its default if it has one),
    stored through its slot's descriptor, the class's __setattr__ being closed."""
    names = {"_set_" + field: getattr(cls, field).__set__ for field in cls._fields}
    names.update(("_default_" + field, value) for field, value in cls._defaults.items())
    arguments = ", ".join(field + (f"=_default_{field}" if field in cls._defaults else "")
                          for field in cls._fields)
    body = "".join(f"\n    _set_{field}(self, {field})" for field in cls._fields) or "\n    pass"
    exec(f"def __init__(self, {arguments}):{body}", names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


class FrozenStruct(metaclass=_FrozenStructType):
    """Base of every struct: frozen, slotted, convertible to a plain dict.

    A struct class lists its fields as annotated names (``rtt_us:
    Optional[int] = None``); ``_fields`` holds their names in order.
    Structs compare and hash by class and field values.
    """

    def asdict(self) -> dict[str, Any]:
        """The struct as a dict (nested structs, and structs in lists and tuples, become dicts too)."""
        return {field: _plain(getattr(self, field)) for field in self._fields}

    def replace(self, **changes: Any) -> "FrozenStruct":
        """A copy of the struct with the fields named in changes set to their values."""
        return type(self)(**{**{field: getattr(self, field) for field in self._fields}, **changes})

    def _values(self) -> tuple:
        return tuple(getattr(self, field) for field in self._fields)

    def __repr__(self) -> str:
        return (f"{type(self).__qualname__}("
                + ", ".join(f"{field}={getattr(self, field)!r}" for field in self._fields) + ")")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenStructError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise FrozenStructError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def __reduce__(self):
        # Slots and a closed __setattr__: copy and pickle rebuild through __init__.
        return type(self), self._values()


def _plain(value: Any) -> Any:
    if isinstance(value, FrozenStruct):
        return value.asdict()
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


class SendBuffer(FrozenStruct):
    """Where the bytes written to a socket are, in bytes.

    ``unacked``: sent but not yet acknowledged by the peer.
    ``unsent``: written by the application, still queued in the kernel.
    ``size``: the send buffer's size (SO_SNDBUF, including the kernel's
    per-packet overhead).
    ``free``: how much more the kernel accepts before a writer blocks, never
    negative.  Linux: ``sndbuf - wmem_queued`` from SO_MEMINFO, the same
    comparison the kernel makes to block a writer (memory incl. overhead).
    macOS: ``sb_hiwat - sb_cc`` (SO_SNDBUF - SO_NWRITE), payload bytes.

    For UDP ``unacked`` is ``None`` and ``unsent`` is what the kernel still
    holds (SIOCOUTQ); for UNIX stream sockets ``unsent`` is ``None`` and
    ``unacked`` is what the peer has not read yet (Linux counts both in
    buffer memory, not payload); ``free`` is then ``sndbuf - wmem_alloc``.
    """

    size: int
    unacked: Optional[int]
    unsent: Optional[int]
    free: int

    @property
    def inflight(self) -> int:
        """Bytes the kernel still holds for this socket: unacked + unsent."""
        return (self.unacked or 0) + (self.unsent or 0)


class SocketQueues(FrozenStruct):
    """The queues and buffers of a socket you own, in bytes: what
    process_sockets shows of it from outside, read through the socket.

    ``kind``: "tcp", "udp" or "unix".  ``recv_queue``: TCP, UNIX stream and
    seqpacket: the bytes not yet read; UNIX datagram: the size of the next
    datagram; UDP: the memory the waiting datagrams take, the kernel's
    overhead included (near /proc/net/udp's rx_queue).  ``send_queue``: TCP:
    unacked + unsent; UDP and UNIX: the memory of what was sent and is not
    yet gone (UDP) or read by the peer (UNIX).  Both None for a listener.
    ``rcvbuf``, ``sndbuf``: SO_RCVBUF, SO_SNDBUF.  ``drops``: the kernel's
    count of what it dropped for this socket (UDP: datagrams that found the
    receive buffer full, among others); None where the platform has none.

    Linux: SIOCINQ, SIOCOUTQ, SO_MEMINFO.  macOS: SO_NREAD (a datagram
    socket: the next datagram's size), SO_NWRITE, SO_RCVBUF, SO_SNDBUF;
    ``drops`` is None.
    """

    kind: str
    recv_queue: Optional[int]
    send_queue: Optional[int]
    rcvbuf: int
    sndbuf: int
    drops: Optional[int]


class TcpInfo(FrozenStruct):
    """The kernel's TCP_INFO for one socket, with units in the names.

    Every field the running kernel returned is set; fields an older kernel
    (or the other platform) does not return are ``None``.  Linux rates are
    converted from bytes/s to bits/s (``_bps``).  Fields marked "macOS" are
    from the private ``tcp_info`` / public ``tcp_connection_info`` there.
    """

    state: Optional[str] = None
    ca_state: Optional[str] = None
    retransmits: Optional[int] = None
    probes: Optional[int] = None
    backoff: Optional[int] = None
    options: Optional[int] = None
    snd_wscale: Optional[int] = None
    rcv_wscale: Optional[int] = None
    delivery_rate_app_limited: Optional[bool] = None
    fastopen_client_fail: Optional[int] = None
    rto_us: Optional[int] = None
    ato_us: Optional[int] = None
    snd_mss: Optional[int] = None
    rcv_mss: Optional[int] = None
    unacked_segs: Optional[int] = None
    sacked_segs: Optional[int] = None
    lost_segs: Optional[int] = None
    retrans_segs: Optional[int] = None
    fackets: Optional[int] = None
    last_data_sent_ms: Optional[int] = None
    last_ack_sent_ms: Optional[int] = None
    last_data_recv_ms: Optional[int] = None
    last_ack_recv_ms: Optional[int] = None
    pmtu: Optional[int] = None
    rcv_ssthresh: Optional[int] = None
    rtt_us: Optional[int] = None
    rttvar_us: Optional[int] = None
    snd_ssthresh_segs: Optional[int] = None
    snd_cwnd_segs: Optional[int] = None
    advmss: Optional[int] = None
    reordering: Optional[int] = None
    rcv_rtt_us: Optional[int] = None
    rcv_space: Optional[int] = None
    total_retrans: Optional[int] = None
    pacing_rate_bps: Optional[int] = None
    max_pacing_rate_bps: Optional[int] = None  # None also when unlimited
    bytes_acked: Optional[int] = None
    bytes_received: Optional[int] = None
    segs_out: Optional[int] = None
    segs_in: Optional[int] = None
    notsent_bytes: Optional[int] = None
    min_rtt_us: Optional[int] = None
    data_segs_in: Optional[int] = None
    data_segs_out: Optional[int] = None
    delivery_rate_bps: Optional[int] = None
    busy_time_us: Optional[int] = None
    rwnd_limited_us: Optional[int] = None
    sndbuf_limited_us: Optional[int] = None
    delivered: Optional[int] = None
    delivered_ce: Optional[int] = None
    bytes_sent: Optional[int] = None
    bytes_retrans: Optional[int] = None
    dsack_dups: Optional[int] = None
    reord_seen: Optional[int] = None
    rcv_ooopack: Optional[int] = None
    snd_wnd: Optional[int] = None
    rcv_wnd: Optional[int] = None
    rehash: Optional[int] = None
    total_rto: Optional[int] = None
    total_rto_recoveries: Optional[int] = None
    total_rto_time_ms: Optional[int] = None
    received_ce: Optional[int] = None
    delivered_e1_bytes: Optional[int] = None
    delivered_e0_bytes: Optional[int] = None
    delivered_ce_bytes: Optional[int] = None
    received_e1_bytes: Optional[int] = None
    received_e0_bytes: Optional[int] = None
    received_ce_bytes: Optional[int] = None
    accecn_fail_mode: Optional[int] = None
    accecn_opt_seen: Optional[int] = None
    # macOS only: byte-valued congestion state and send-buffer accounting.
    snd_cwnd_bytes: Optional[int] = None
    snd_ssthresh_bytes: Optional[int] = None
    send_buffer_bytes: Optional[int] = None  # tcpi_snd_sbbytes: unacked + unsent
    unacked_bytes: Optional[int] = None  # tcpi_txunacked
    snd_bw_bps: Optional[int] = None
    rx_duplicate_bytes: Optional[int] = None
    rx_out_of_order_bytes: Optional[int] = None
    retransmitted_segs: Optional[int] = None  # tcpi_txretransmitpackets


TCP_INFO_FIELDS = TcpInfo._fields


def endpoint(address: Optional[str], port: Optional[int]) -> Optional[str]:
    """"address:port", "[address]:port" for IPv6; None without an address;
    the address alone without a port (a UNIX path)."""
    if address is None or port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def figure_class():
    """matplotlib's Figure (pyplot's global state untouched); NotSupported when
    matplotlib is not installed, saying how to install it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise NotSupported("drawing needs matplotlib: pip install 'sockdiag[plot]'") from None
    return Figure


# The kinds of socket process_sockets reads; bit i of the core's kinds mask is SOCKET_KINDS[i].
SOCKET_KINDS = ("tcp", "udp", "unix")


def kind_mask(kinds) -> int:
    """The core's bitmask for kind names ("tcp", "udp", "unix"; a str or an
    iterable of them).  ValueError for another name or none at all."""
    if isinstance(kinds, str):
        kinds = [kinds]
    mask = 0
    for kind in kinds:
        name = kind.strip().lower() if isinstance(kind, str) else kind
        if name not in SOCKET_KINDS:
            raise ValueError(f"unknown socket kind {kind!r} (known: {', '.join(SOCKET_KINDS)})")
        mask |= 1 << SOCKET_KINDS.index(name)
    if not mask:
        raise ValueError(f"no socket kind given (known: {', '.join(SOCKET_KINDS)})")
    return mask


class SocketInfo(FrozenStruct):
    """One socket of a process, seen from outside it: TCP, UDP or UNIX (``kind``).

    ``unacked``, ``unsent``, ``free`` and ``sndbuf`` have the definitions of
    SendBuffer (bytes); ``None`` where the platform cannot split them from
    outside the process (macOS gives only the total, ``send_queue``).
    ``queue_delay_s``: how long a byte written now waits before it is sent,
    unsent over the rate the queue drains; ``None`` when unknown or stalled,
    and ``queue_delay_basis`` says which (QUEUE_DELAY_BASES).
    ``limited_by``: why bytes wait (LIMITS): "receiver", "network",
    "sender_buffer" or "application"; ``None`` when one look cannot tell.
    ``stalled_s``: seconds with bytes unsent and nothing acknowledged: 0
    with nothing unsent, else ``None`` from a single look (process_sockets)
    and timed by views that sample over time (sockdiag.drain).  docs/queue-delay.md has the rules.

    Per kind (Linux; docs/kinds.md has the table):

    - ``tcp``: ``send_queue`` is unacked + unsent (ss's Send-Q),
      ``recv_queue`` the bytes not yet read; a listener's ``recv_queue`` is
      its accept queue and ``backlog_limit`` that queue's limit.
    - ``udp``: ``recv_queue`` is the memory of the datagrams waiting to be
      read and ``send_queue`` that of datagrams not yet sent, the kernel's
      overhead included (/proc/net/udp's rx_queue and tx_queue, ss's
      Recv-Q and Send-Q); ``drops`` is the kernel's count of datagrams dropped
      for this socket (a full receive buffer, among others; /proc/net/udp's
      drops).  ``unacked``, ``unsent``, ``queue_delay_s`` and its basis,
      ``limited_by``, ``stalled_s``, ``congestion`` and ``tcp`` are None
      (for UNIX sockets too).
    - ``unix``: ``local_address`` is the path ("@name" for an abstract name,
      bytes that are not UTF-8 escaped as ``\\xNN``; None when unnamed),
      ports are None and ``peer_inode`` is the inode of the connected peer
      (None for a peer not yet accepted, which has no inode).
      ``recv_queue``: stream and seqpacket, the unread bytes; datagram, the
      size of the next datagram (the kernel's FIONREAD).  ``send_queue``:
      the memory of what was sent and not yet read by the peer.  A
      listener's ``recv_queue`` is its backlog (connections not yet
      accepted) and ``backlog_limit`` the listen() limit.

    ``rcvbuf`` and ``sndbuf`` are SO_RCVBUF and SO_SNDBUF (bytes including
    the kernel's overhead), ``drops`` the kernel's sk_drops; all None where
    the platform cannot read them (macOS: ``drops``).  ``socket_type`` is
    "stream", "dgram" or "seqpacket".
    """

    fd: Optional[int]
    inode: Optional[int]
    family: str  # "IPv4", "IPv6" or "UNIX"
    local_address: Optional[str]
    local_port: Optional[int]
    remote_address: Optional[str]
    remote_port: Optional[int]
    state: str
    send_queue: Optional[int]  # TCP: unacked + unsent (ss's Send-Q)
    unacked: Optional[int]
    unsent: Optional[int]
    free: Optional[int]
    sndbuf: Optional[int]
    recv_queue: Optional[int]
    queue_delay_s: Optional[float]
    congestion: Optional[str]
    tcp: Optional[TcpInfo]
    limited_by: Optional[str] = None
    queue_delay_basis: Optional[str] = None
    stalled_s: Optional[float] = None
    kind: str = "tcp"
    socket_type: Optional[str] = "stream"
    rcvbuf: Optional[int] = None
    drops: Optional[int] = None
    backlog_limit: Optional[int] = None
    peer_inode: Optional[int] = None

    @property
    def local(self) -> str:
        """Local endpoint as "address:port" ("[address]:port" for IPv6)."""
        return endpoint(self.local_address, self.local_port)  # type: ignore[return-value]

    @property
    def remote(self) -> str:
        """Remote endpoint as "address:port" ("[address]:port" for IPv6)."""
        return endpoint(self.remote_address, self.remote_port)  # type: ignore[return-value]


class InterfaceCounters(FrozenStruct):
    """Counters of one network interface since it came up (64-bit, exact).

    ``None`` where a platform has no such counter, never a fake 0.
    ``counters_note``: ``None``, or one line saying why counters the kernel
    gave are ``None`` here (macOS: a byte counter it leaves at 0 while it
    counts packets).
    """

    name: str
    index: Optional[int]
    is_up: Optional[bool]
    mtu: Optional[int]
    rx_bytes: Optional[int]
    tx_bytes: Optional[int]
    rx_packets: Optional[int]
    tx_packets: Optional[int]
    rx_errors: Optional[int]
    tx_errors: Optional[int]
    rx_drops: Optional[int]
    tx_drops: Optional[int]
    counters_note: Optional[str] = None


# --- macOS: user-space networking --------------------------------------------


class UserSpaceNetworking(FrozenStruct):
    """What a macOS process's descriptor table says about where its flows live.

    Network.framework (macOS 12+) can run a process's connections over
    Skywalk channels in user space: such flows have ``channel`` descriptors
    (and ``netpolicy``, i.e. NECP, ones) instead of sockets, so no socket
    tool (lsof, netstat, sockdiag's process_sockets) sees them.  Counts are
    descriptors of each type (PROC_PIDLISTFDS).
    """

    pid: int
    socket_fds: int
    channel_fds: int
    netpolicy_fds: int
    nexus_fds: int

    @property
    def has_userspace_flows(self) -> bool:
        """True when some flows of the process bypass sockets (a channel or nexus fd)."""
        return self.channel_fds > 0 or self.nexus_fds > 0

    @property
    def hint(self) -> Optional[str]:
        """One line for people when has_userspace_flows, else None."""
        if not self.has_userspace_flows:
            return None
        return (
            f"pid {self.pid} holds {self.channel_fds + self.nexus_fds} Skywalk channel/nexus "
            "fd(s): some of its "
            "connections run in user space (Network.framework) and have no socket; "
            f"see them with `skywalkctl flow -P {self.pid}`"
        )


# --- interface counters ----------------------------------------------------------


class LinkStats64(FrozenStruct):
    """Linux's ``struct rtnl_link_stats64`` (IFLA_STATS64), field for field.

    Counts since the interface was created; bytes and packets.  The first 23
    fields are in every kernel since 2.6.35; ``rx_nohandler`` (4.6) and
    ``rx_otherhost_dropped`` (5.19) are ``None`` when an older kernel's
    shorter struct lacks them.
    """

    rx_packets: int
    tx_packets: int
    rx_bytes: int
    tx_bytes: int
    rx_errors: int
    tx_errors: int
    rx_dropped: int
    tx_dropped: int
    multicast: int
    collisions: int
    rx_length_errors: int
    rx_over_errors: int
    rx_crc_errors: int
    rx_frame_errors: int
    rx_fifo_errors: int
    rx_missed_errors: int
    tx_aborted_errors: int
    tx_carrier_errors: int
    tx_fifo_errors: int
    tx_heartbeat_errors: int
    tx_window_errors: int
    rx_compressed: int
    tx_compressed: int
    rx_nohandler: Optional[int]
    rx_otherhost_dropped: Optional[int]


class InterfaceRates(FrozenStruct):
    """Per-second rates of one interface between two samples.

    A rate is ``None`` when either sample lacks the counter or the counter
    went backwards (the interface was re-created), never a fake 0.
    """

    name: str
    rx_bytes_per_s: Optional[float]
    tx_bytes_per_s: Optional[float]
    rx_packets_per_s: Optional[float]
    tx_packets_per_s: Optional[float]

    @property
    def total_bytes_per_s(self) -> float:
        """rx + tx bytes per second (a missing rate counts as 0), to rank interfaces."""
        return (self.rx_bytes_per_s or 0.0) + (self.tx_bytes_per_s or 0.0)


# --- recording an application's sockets (sockdiag.record) --------------------


class Sample(FrozenStruct):
    """One look at a socket's send buffer during a recording.

    ``time_s``: ``time.monotonic()`` when the sample was taken, in seconds.
    ``size``, ``unacked``, ``unsent`` and ``free`` are SendBuffer's (bytes).
    ``queue_delay_s``, ``limited_by`` and ``stalled_s`` are SocketInfo's, from
    the drain across the recording's samples (docs/queue-delay.md): unsent
    over the rate the recording saw its bytes acknowledged, None while nothing
    is acknowledged and for UDP/UNIX sockets.
    A recording made with ``fields=("rtt_us", ...)`` gives samples of a
    subclass that also has those TcpInfo attributes.
    """

    time_s: float
    size: int
    unacked: Optional[int]
    unsent: Optional[int]
    free: int
    queue_delay_s: Optional[float]
    limited_by: Optional[str]
    stalled_s: Optional[float]


class RecordingSummary(FrozenStruct):
    """Distribution of a recording's samples (nearest-rank percentiles).

    Byte figures are of SendBuffer's ``unacked`` / ``unsent``; ``None`` when
    no sample had a value.  ``full_buffer_s``: time the send buffer was full
    (``free == 0``: a writer blocks), counting each sample's state as lasting
    until the next sample.  Linux wakes a blocked writer only once about a
    third of the buffer is free again, so a blocking writer waits longer.
    ``samples`` is how many are kept, ``dropped`` how many older ones the
    ring buffer overwrote (the summary covers the kept ones).
    """

    samples: int
    dropped: int
    duration_s: float
    unacked_p50_bytes: Optional[int]
    unacked_p99_bytes: Optional[int]
    unacked_max_bytes: Optional[int]
    unsent_p50_bytes: Optional[int]
    unsent_p99_bytes: Optional[int]
    unsent_max_bytes: Optional[int]
    queue_delay_p50_s: Optional[float]
    queue_delay_p99_s: Optional[float]
    queue_delay_max_s: Optional[float]
    full_buffer_s: float


# --- per-process traffic (top, budgets, fd headroom) -------------------------


class TcpDestroyEvent(FrozenStruct):
    """A TCP socket the kernel has just freed, with its final counters.

    From the sock_diag socket-destroy multicast groups (Linux, any user).  The
    kernel sends no inode and no uid with it (the socket is already detached
    from its file), so ``cookie`` is what identifies the socket.
    ``tcp`` is its last TCP_INFO (``None`` if the kernel sent none).
    """

    cookie: int
    family: str  # "IPv4" or "IPv6"
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str
    tcp: Optional[TcpInfo]


# What per-process traffic can be ranked by (total = sent + received).


class ProcessTraffic(FrozenStruct):
    """TCP bytes of one process over one sampling interval, and since the start.

    Counters are the kernel's tcp_info ones summed over the process's
    sockets, including those that closed during the interval:
    ``sent`` (bytes_sent, retransmissions included), ``acked``
    (bytes_acked), ``received`` (bytes_received), ``retrans``
    (bytes_retrans).  acked and received may also count a SYN or FIN (one
    sequence number each, a few bytes per connection).  ``*_bytes`` cover the interval,
    ``*_bytes_per_s`` are their rates, ``total_*_bytes`` run since the
    accounting started (its baseline).  ``limited_*``: connections with bytes
    unsent at the sample, by what limits them (one look's verdict, as
    process_sockets gives it: the peer's window, a full congestion window);
    ``stalled``: those of them that had nothing acknowledged since the
    previous sample, at least sockdiag.drain.MIN_STALL_S.  ``udp_drops``:
    datagrams the kernel dropped for its UDP sockets in the interval (a full
    receive buffer, most often), ``udp_drops_per_s`` their rate;
    ``udp_receive_fill``: its fullest UDP receive buffer now, from 0 to 1
    (receive queue over SO_RCVBUF; None without UDP sockets).
    ``pid`` is ``None`` for the row of unattributed traffic
    (sockets whose owner could not be known).  Counters a kernel does not
    report (bytes_sent and bytes_retrans before Linux 4.19) are ``None``.
    """

    pid: Optional[int]
    name: Optional[str]
    connections: int  # TCP sockets with data state at the sample
    closed: int  # sockets closed during the interval whose final counters were read
    sent_bytes: Optional[int]
    acked_bytes: Optional[int]
    received_bytes: Optional[int]
    retrans_bytes: Optional[int]
    sent_bytes_per_s: Optional[float]
    acked_bytes_per_s: Optional[float]
    received_bytes_per_s: Optional[float]
    retrans_bytes_per_s: Optional[float]
    total_sent_bytes: Optional[int]
    total_acked_bytes: Optional[int]
    total_received_bytes: Optional[int]
    total_retrans_bytes: Optional[int]
    limited_receiver: int = 0
    limited_network: int = 0
    limited_sender_buffer: int = 0
    stalled: int = 0
    udp_drops: int = 0
    udp_drops_per_s: Optional[float] = None
    udp_receive_fill: Optional[float] = None


class TrafficSample(FrozenStruct):
    """One sample of per-process TCP traffic, with what it may have missed.

    ``interval_s``: seconds since the previous sample (or the baseline).
    ``closed_sockets_counted``: the socket-destroy notifications are read,
    so sockets closed between two samples are counted;
    without them a connection opened and closed between two samples is not
    seen at all, and one seen before is missing its last bytes.
    ``missed_sockets``: sockets that disappeared since the previous sample
    without final counters, or whose counters the kernel zeroed (it does when
    it disconnects a socket: a close with SO_LINGER 0, a connect to
    AF_UNSPEC) as a counter that went backwards; their bytes after that
    sample are not counted.
    ``notification_overflows``: times, during the interval, the kernel
    dropped notifications because they arrived faster than they were read.
    ``unreadable_processes``: processes whose fds could not be read (other
    users' without root): their traffic is in the unattributed row.
    ``unreadable_namespaces``: network namespaces of processes (containers)
    that could not be entered (not root): their traffic is missing.
    ``connects_traced``: the connect tracepoint names the process of client
    connections that live shorter than a sample (root); otherwise
    ``connects_untraced_reason`` says why not.  ``trace_overruns``: connect
    events the kernel dropped during the interval.  ``running_as_root``:
    the sample was taken as root (what an unreadable process means).
    """

    time: float  # seconds since the epoch
    interval_s: float
    processes: tuple[ProcessTraffic, ...]
    closed_sockets_counted: bool
    missed_sockets: int
    notification_overflows: int
    unreadable_processes: int
    connects_traced: bool
    connects_untraced_reason: Optional[str]
    trace_overruns: int
    running_as_root: bool
    unreadable_namespaces: int = 0


class FdHeadroom(FrozenStruct):
    """A process's open file descriptors against its RLIMIT_NOFILE soft limit.

    ``near_limit``: fewer than 10% of the soft limit left; past the limit,
    opening a connection fails with "Too many open files" (EMFILE).
    ``soft_limit`` is ``None`` when unlimited or when the platform cannot
    read it for that process (macOS: other processes).
    """

    pid: int
    open_fds: int
    soft_limit: Optional[int]

    @property
    def near_limit(self) -> bool:
        """True when open_fds is within 10% of the soft limit."""
        return self.soft_limit is not None and self.open_fds >= 0.9 * self.soft_limit


class BudgetExceeded(FrozenStruct):
    """A process passed a byte budget; what was done about it.

    ``direction`` is "sent" (tcp_info bytes_sent: bytes put on the wire,
    retransmissions included) or "received" (bytes_received).  ``action``
    is "report", "stop" (SIGSTOP), "kill" (SIGKILL) or "exec" (a command
    was started); ``detail`` says what happened, in one line.
    """

    pid: int
    direction: str
    budget_bytes: int
    used_bytes: int
    action: str
    detail: str
