"""UDP and UNIX sockets of a process, checked against the kernel's other views.

A holder process in a network namespace of the test's own makes every kind
of socket (a UDP receiver that dropped datagrams, a UNIX stream with 50,000
unread bytes, a listener with connections not yet accepted, abstract,
unnamed and non-UTF-8 names); sockdiag reads it from outside and each
number is compared with /proc/net/udp, /proc/net/unix, /proc/net/snmp and
`ss -uamp` / `ss -xamp` run in that namespace.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid

import pytest

import sockdiag
from sockdiag import decode, reference
from sockdiag._common import kind_mask

from conftest import requires_linux, requires_root, requires_ss

pytestmark = [requires_linux, requires_root, requires_ss]

ALL_STATES = 0xFFFFFFFF & ~((1 << 6) | (1 << 12))  # not TIME_WAIT, NEW_SYN_RECV
UNREAD = 50_000

# Sockets made so that no two fields of one struct are equal by chance:
# rcvbuf != sndbuf, recv_queue != send_queue, backlog != its limit.
HOLDER = r"""
import json, os, socket, sys
base = sys.argv[1].encode()
found = {}
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 24576)
receiver.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(200):
    sender.sendto(b"d" * 700, receiver.getsockname())
found["udp_receiver"] = receiver.fileno()
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.connect(("::1", 9))
found["udp_v6"] = v6.fileno()
writer, reader = socket.socketpair()
writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 262144)
writer.sendall(b"u" * 50000)
found["stream_reader"], found["stream_writer"] = reader.fileno(), writer.fileno()
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
path = base + b"/listen-\xff\xfe.sock"
listener.bind(path)
listener.listen(5)
clients = []
for _ in range(2):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(path)
    clients.append(client)
found["listener"] = listener.fileno()
abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
abstract.bind(b"\0sockdiag-test-" + base[-8:])
found["abstract"] = abstract.fileno()
left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
left.send(b"s" * 3000)
found["seqpacket_right"] = right.fileno()
print(json.dumps(found), flush=True)
sys.stdin.read()
"""


class Holder:
    """The holder process in a namespace of its own, and what it made."""

    def __init__(self, tmp_path) -> None:
        self.netns = f"sdtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        self.sh("ip", "link", "set", "lo", "up")
        self.before = self.udp_snmp()
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, sys.executable, "-c", HOLDER, str(tmp_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.fds = json.loads(self.process.stdout.readline())
        self.pid = self.process.pid
        # `ip netns exec` execs the interpreter: same pid.

    def sh(self, *command: str) -> str:
        return subprocess.run(["ip", "netns", "exec", self.netns, *command], check=True,
                              capture_output=True).stdout.decode("utf-8", "surrogateescape")

    def udp_snmp(self) -> dict[str, int]:
        lines = [line.split() for line in self.sh("cat", "/proc/net/snmp").splitlines()
                 if line.startswith("Udp:")]
        return dict(zip(lines[0][1:], map(int, lines[1][1:])))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        subprocess.run(["ip", "netns", "delete", self.netns], check=False)


@pytest.fixture
def holder(tmp_path):
    made = Holder(tmp_path)
    try:
        yield made
    finally:
        made.close()


def by_fd(sockets) -> dict:
    return {s.fd: s for s in sockets}


def proc_net_udp(holder: Holder) -> dict[int, dict[str, int]]:
    """inode -> rx_queue, tx_queue, drops of /proc/net/udp and udp6."""
    rows = {}
    for name in ("udp", "udp6"):
        for line in holder.sh("cat", f"/proc/net/{name}").splitlines()[1:]:
            fields = line.split()
            tx, rx = (int(value, 16) for value in fields[4].split(":"))
            rows[int(fields[9])] = {"rx_queue": rx, "tx_queue": tx, "drops": int(fields[-1])}
    return rows


def proc_net_unix(holder: Holder) -> dict[int, dict]:
    """inode -> type, state and path of /proc/net/unix (path as the kernel prints it)."""
    rows = {}
    for line in holder.sh("cat", "/proc/net/unix").splitlines()[1:]:
        fields = line.split(None, 7)
        rows[int(fields[6])] = {"type": int(fields[4], 16), "state": int(fields[5], 16),
                                "path": fields[7] if len(fields) > 7 else None}
    return rows


_SKMEM = re.compile(r"skmem:\((?P<body>[^)]*)\)")
# `ss -H -xamne`: Netid State Recv-Q Send-Q path inode peer-path peer-inode skmem...
_SS_UNIX = re.compile(r"^\S+\s+\S+\s+(?P<recv_q>\d+)\s+(?P<send_q>\d+)\s+.*?(?P<inode>\d+)\s+\S+\s+(?P<peer>\d+)\s+skmem")
# `ss -H -uamne` (one kind: no Netid): State Recv-Q Send-Q local peer ino:N ..., skmem on the next line.
_SS_UDP = re.compile(r"^\S+\s+(?P<recv_q>\d+)\s+(?P<send_q>\d+)\s+.*\bino:(?P<inode>\d+)")


def ss_sockets(holder: Holder, option: str) -> dict[int, dict]:
    """inode -> Recv-Q, Send-Q, peer inode and skmem of `ss -H -<option>amne` in the namespace."""
    text = holder.sh("ss", "-H", f"-{option}amne")
    if option == "u":
        text = re.sub(r"\n\s+skmem", " skmem", text)
    rows = {}
    for line in text.splitlines():
        match = (_SS_UNIX if option == "x" else _SS_UDP).search(line)
        skmem = dict(re.findall(r"([a-z]+)(\d+)", _SKMEM.search(line).group("body")))
        rows[int(match["inode"])] = {
            "recv_q": int(match["recv_q"]), "send_q": int(match["send_q"]),
            "peer": int(match["peer"]) if option == "x" else None,
            "rcvbuf": int(skmem["rb"]), "sndbuf": int(skmem["tb"]), "drops": int(skmem["d"])}
    return rows


def test_udp_queues_and_drops_equal_proc_net_udp_ss_and_snmp(holder):
    found = by_fd(sockdiag.process_sockets(holder.pid, kinds=["udp"]))
    assert {s.kind for s in found.values()} == {"udp"}
    receiver, v6 = found[holder.fds["udp_receiver"]], found[holder.fds["udp_v6"]]
    proc, ss = proc_net_udp(holder), ss_sockets(holder, "u")
    after = holder.udp_snmp()
    assert receiver.drops > 0 and receiver.recv_queue > 0
    for s in (receiver, v6):
        assert (s.recv_queue, s.send_queue, s.drops) == (
            proc[s.inode]["rx_queue"], proc[s.inode]["tx_queue"], proc[s.inode]["drops"])
        assert (s.recv_queue, s.send_queue, s.rcvbuf, s.sndbuf, s.drops) == (
            ss[s.inode]["recv_q"], ss[s.inode]["send_q"], ss[s.inode]["rcvbuf"],
            ss[s.inode]["sndbuf"], ss[s.inode]["drops"])
    # The namespace is new: the receiver's drops are all of its RcvbufErrors.
    assert receiver.drops == after["RcvbufErrors"] - holder.before["RcvbufErrors"]
    assert receiver.rcvbuf != receiver.sndbuf
    assert (receiver.family, receiver.state, receiver.local_address) == ("IPv4", "CLOSE", "127.0.0.1")
    assert (v6.family, v6.state, v6.remote_address, v6.remote_port) == ("IPv6", "ESTABLISHED", "::1", 9)
    assert receiver.unacked is receiver.unsent is receiver.tcp is receiver.congestion is None


def test_unix_queues_names_and_peers_equal_proc_net_unix_and_ss(holder):
    found = by_fd(sockdiag.process_sockets(holder.pid, kinds="unix"))
    proc, ss = proc_net_unix(holder), ss_sockets(holder, "x")
    reader, writer = found[holder.fds["stream_reader"]], found[holder.fds["stream_writer"]]
    listener, abstract = found[holder.fds["listener"]], found[holder.fds["abstract"]]
    seqpacket = found[holder.fds["seqpacket_right"]]
    assert reader.recv_queue == UNREAD
    assert (reader.peer_inode, writer.peer_inode) == (writer.inode, reader.inode)
    assert (listener.recv_queue, listener.backlog_limit, listener.send_queue) == (2, 5, None)
    assert seqpacket.recv_queue == 3000
    for s in found.values():
        assert s.kind == "unix" and s.family == "UNIX"
        assert proc[s.inode]["type"] == {"stream": 1, "dgram": 2, "seqpacket": 5}[s.socket_type]
        row = ss[s.inode]
        limit_or_send = s.backlog_limit if s.state == "LISTEN" else s.send_queue
        assert (s.recv_queue, limit_or_send, s.rcvbuf, s.sndbuf, s.drops) == (
            row["recv_q"], row["send_q"], row["rcvbuf"], row["sndbuf"], row["drops"])
        assert (s.peer_inode or 0) == row["peer"]
    assert writer.rcvbuf != writer.sndbuf
    assert listener.local_address.endswith("/listen-\\xff\\xfe.sock")  # escaped, not a crash
    assert proc[listener.inode]["path"].encode("utf-8", "surrogateescape").endswith(b"/listen-\xff\xfe.sock")
    assert abstract.local_address == "@" + proc[abstract.inode]["path"][1:]
    assert (abstract.socket_type, abstract.state) == ("dgram", "CLOSE")
    assert reader.local_address is None and proc[reader.inode]["path"] is None
    assert reader.local == reader.local_address and reader.local_port is None


def test_kinds_default_to_tcp_and_combine(holder):
    assert sockdiag.process_sockets(holder.pid) == []
    every = sockdiag.process_sockets(holder.pid, kinds=("tcp", "udp", "unix"))
    assert {s.kind for s in every} == {"udp", "unix"}
    assert len(every) == len(sockdiag.process_sockets(holder.pid, kinds="udp")) + len(
        sockdiag.process_sockets(holder.pid, kinds="unix"))
    assert sockdiag.sockets_of_processes([holder.pid], kinds=["unix", "udp"])[holder.pid] == every
    listening = sockdiag.process_sockets(holder.pid, states=["listen"], kinds=["unix", "udp"])
    assert [s.fd for s in listening] == [holder.fds["listener"]]


@pytest.mark.parametrize("kinds", ["sctp", ["tcp", "raw"], []])
def test_an_unknown_kind_is_one_valueerror(kinds):
    with pytest.raises(ValueError, match="socket kind"):
        sockdiag.process_sockets(os.getpid(), kinds=kinds)


@pytest.fixture
def own_sockets(tmp_path):
    """UDP, UNIX stream with unread bytes, abstract datagram and a non-UTF-8 path, in this process."""
    made = []
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.sendto(b"x" * 100, receiver.getsockname())
    made += [receiver, sender, socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)]
    made[-1].bind(("::1", 0))
    writer, reader = socket.socketpair()
    writer.send(b"y" * 1234)
    made += [writer, reader]
    named = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    named.bind(bytes(tmp_path) + b"/\xff.sock")
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    abstract.bind(b"\0sockdiag-own-" + uuid.uuid4().hex.encode())
    abstract.listen(3)
    made += [named, abstract]
    yield made
    for sock in made:
        sock.close()


def test_core_and_reference_agree_on_every_kind(own_sockets):
    """The Cython path and reference.py's struct decoding give equal structs."""
    pid, mask = os.getpid(), kind_mask(("tcp", "udp", "unix"))
    fast = sorted(sockdiag.process_sockets(pid, kinds=("tcp", "udp", "unix")), key=lambda s: s.inode)
    twin = sorted(reference.process_sockets(pid, ALL_STATES, mask), key=lambda s: s.inode)
    assert fast == twin
    assert {s.kind for s in fast} >= {"udp", "unix"}


def captured_dumps(kinds: str) -> list[tuple[str, bytes]]:
    """(kind, bytes) of each real dump of the kinds, read with Python's socket module."""
    dumps = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, reference.NETLINK_SOCK_DIAG) as nl:
        for kind, request in reference.dump_requests(kind_mask(kinds), ALL_STATES):
            dumps.append((kind, b"".join(reference.netlink_dump(nl, request, 3, True))))
    return dumps


def test_decoders_agree_on_real_dumps_and_their_truncations(own_sockets):
    fds = reference.socket_fds(os.getpid())
    for kind, buf in captured_dumps(["udp", "unix"]):
        inet_kind = "udp" if kind == "udp" else "tcp"
        decoded = decode.inet_diag_dump(buf, fds, inet_kind)
        assert decoded == reference.inet_diag_dump(buf, fds, inet_kind)
        assert decoded and all(s.kind == kind for s in decoded)
        for cut in range(0, min(len(buf), 600), 7):
            outcomes = []
            for decoder in (decode.inet_diag_dump, reference.inet_diag_dump):
                try:
                    outcomes.append(decoder(buf[:cut], None, inet_kind))
                except ValueError:
                    outcomes.append(ValueError)
            assert outcomes[0] == outcomes[1], cut


def test_a_hostile_unix_message_is_a_valueerror():
    header = reference._NLMSGHDR
    short = header.pack(header.size + 8, 20, 2, 0, 0) + bytes([1]) + bytes(7)
    bad_attribute = (header.pack(header.size + 16 + 4, 20, 2, 0, 0) + bytes([1, 1, 1, 0])
                     + bytes(12) + (400).to_bytes(2, "little") + (0).to_bytes(2, "little"))
    for buf in (short, bad_attribute):
        for decoder in (decode.inet_diag_dump, reference.inet_diag_dump):
            with pytest.raises(ValueError):
                decoder(buf)


def test_every_json_socket_record_carries_its_kind(holder):
    from sockdiag._fast import json_objects
    from sockdiag.fields import SOCKET_JSON_FIELDS

    structs = sockdiag.process_sockets(holder.pid, kinds=("tcp", "udp", "unix"))
    objects = json.loads(json_objects(structs, SOCKET_JSON_FIELDS))
    assert [o["kind"] for o in objects] == [s.kind for s in structs]
    assert [(o["recv_queue"], o["drops"], o["rcvbuf"], o["peer_inode"]) for o in objects] == [
        (s.recv_queue, s.drops, s.rcvbuf, s.peer_inode) for s in structs]


KIND_CHURNER = r"""
import socket, sys
held = {"udp": [], "unix": [], "tcp": []}
listener = socket.create_server(("127.0.0.1", 0))
for line in sys.stdin:
    command, kind = line.split()
    if command == "open" and kind == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        held["udp"].append(sock)
    elif command == "open" and kind == "unix":
        held["unix"] += socket.socketpair()
    elif command == "open" and kind == "tcp":
        held["tcp"] += [socket.create_connection(listener.getsockname()), listener.accept()[0]]
    elif command == "close":
        held[kind].pop().close()
    print("ok", flush=True)
"""


@pytest.fixture
def kind_churner():
    """A child running KIND_CHURNER beside 40 loopback pairs of this process (the
    child is small beside the TCP table); yields (child, do): do(line) has the
    child do line and waits for its "ok"."""
    from testsupport.children import python_child
    from testsupport.loopback import connected_pair

    child = python_child(KIND_CHURNER)
    ballast = []

    def do(line: str) -> None:
        child.stdin.write(line + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"

    try:
        ballast += [connected_pair() for _ in range(40)]
        yield child, do
    finally:
        child.stdin.close()
        child.wait(timeout=30)
        for pair in ballast:
            for sock in pair:
                sock.close()


def test_refreshes_ask_by_name_and_equal_a_full_pass_as_kinds_come_and_go(kind_churner):
    """A small process's UNIX sockets are asked for by inode, its UDP ones
    read from the UDP table, its TCP ones by name: once a pass has learnt a
    new socket, each refresh is answered without a TCP dump and equals a
    pass that knows nothing."""
    from sockdiag import _fast

    child, do = kind_churner
    known = _fast.KnownSockets()
    every = kind_mask(("tcp", "udp", "unix"))

    def key(s):
        return (s.inode, s.fd, s.kind, s.state, s.local_address, s.local_port, s.peer_inode)

    for line in ("open tcp", "open unix", "open udp", "open unix", "close unix", "open udp",
                 "close udp", "open tcp", "close tcp"):
        do(line)
        _fast.process_sockets_linux(child.pid, ALL_STATES, None, known, every)  # learns
        before = known.exact_passes
        refreshed = _fast.process_sockets_linux(child.pid, ALL_STATES, None, known, every)
        assert known.exact_passes == before + 1, line
        fresh = _fast.process_sockets_linux(child.pid, ALL_STATES, None, None, every)
        assert sorted(map(key, refreshed)) == sorted(map(key, fresh)), line
        tcp_only = _fast.process_sockets_linux(child.pid, ALL_STATES, None, known, kind_mask("tcp"))
        assert {s.kind for s in tcp_only} <= {"tcp"}
    assert {s.kind for s in fresh} == {"tcp", "udp", "unix"}


def test_queues_of_a_socket_you_own_equal_the_outside_view_and_the_twin(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(100):
        sender.sendto(b"q" * 600, receiver.getsockname())
    writer, reader = socket.socketpair()
    writer.send(b"w" * 7000)
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    left.send(b"s" * 900)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "listener.sock"))
    listener.listen(4)
    tcp_listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(tcp_listener.getsockname())
    server, _ = tcp_listener.accept()
    client.send(b"t" * 3000)
    owned = [receiver, sender, writer, reader, left, right, listener, tcp_listener, client, server]
    try:
        time.sleep(0.05)  # loopback delivers the TCP bytes
        outside = {s.fd: s for s in sockdiag.process_sockets(os.getpid(), kinds=("tcp", "udp", "unix"))}
        for sock in owned:
            queues = sockdiag.socket_queues(sock)
            assert queues == reference.socket_queues(sock)
            seen = outside[sock.fileno()]
            assert queues.kind == seen.kind
            assert (queues.recv_queue, queues.send_queue, queues.rcvbuf, queues.sndbuf, queues.drops) == (
                None if seen.state == "LISTEN" else seen.recv_queue, seen.send_queue,
                seen.rcvbuf, seen.sndbuf, seen.drops), sock
        assert sockdiag.socket_queues(receiver).drops > 0
        assert sockdiag.socket_queues(reader).recv_queue == 7000
        assert sockdiag.socket_queues(right).recv_queue == 900
        assert sockdiag.socket_queues(server).recv_queue == 3000
    finally:
        for sock in owned:
            sock.close()


def test_queues_of_what_is_not_a_tcp_udp_or_unix_socket_is_one_unsuitablesocket():
    read_end, write_end = os.pipe()
    closed = socket.socket()
    closed.close()
    netlink = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    try:
        for what in (read_end, closed, netlink):
            with pytest.raises(sockdiag.UnsuitableSocket):
                sockdiag.socket_queues(what)
    finally:
        os.close(read_end)
        os.close(write_end)
        netlink.close()


def test_unix_sockets_asked_for_by_inode_equal_the_core_and_the_twin(kind_churner):
    """The exact path's answers: a UNIX socket is found by its inode alone, any
    other socket is ENOENT; the twin asking one inode at a time agrees with
    the core's refresh, which asks them all at once."""
    from sockdiag import _fast

    child, do = kind_churner
    known = _fast.KnownSockets()
    mask = kind_mask("unix")
    for line in ("open unix", "open unix", "open udp", "open tcp"):
        do(line)
    _fast.process_sockets_linux(child.pid, ALL_STATES, None, known, kind_mask(("tcp", "udp", "unix")))
    before = known.exact_passes
    core = _fast.process_sockets_linux(child.pid, ALL_STATES, None, known, mask)
    assert known.exact_passes == before + 1
    twin = reference.asked_unix_sockets(reference.socket_fds(child.pid))
    assert sorted(twin, key=lambda s: s.inode) == sorted(core, key=lambda s: s.inode)
    assert [s.kind for s in twin] == ["unix"] * 4


def test_export_carries_drops_queues_and_unix_backlog_as_the_kernel_counts_them(holder):
    """`export --once --pid` of the holder: its UDP drops, each kind's queues and its
    UNIX listener's backlog equal /proc/net/udp and ss in its namespace."""
    done = subprocess.run([sys.executable, "-c", "from sockdiag.cli import main; main()", "export", "--once",
                           "--json", "--pid", str(holder.pid)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    series = {(s["name"], s["labels"].get("kind"), s["labels"].get("queue")): s["value"]
              for s in map(json.loads, done.stdout.splitlines()) if s["labels"].get("pid") == str(holder.pid)}
    proc, udp, unix = proc_net_udp(holder), ss_sockets(holder, "u"), ss_sockets(holder, "x")
    assert series["sockdiag_process_socket_drops_total", "udp", None] == sum(r["drops"] for r in proc.values()) == sum(
        r["drops"] for r in udp.values()) > 0
    assert series["sockdiag_process_queue_bytes", "udp", "receive"] == sum(r["rx_queue"] for r in proc.values())
    assert series["sockdiag_process_queue_bytes", "udp", "send"] == sum(r["tx_queue"] for r in proc.values())
    listener = sockdiag.process_sockets(holder.pid, kinds=["unix"])
    listening = {s.inode for s in listener if s.state == "LISTEN"}
    assert series["sockdiag_process_unix_backlog_connections", None, None] == sum(
        unix[inode]["recv_q"] for inode in listening) == 2
    assert series["sockdiag_process_unix_backlog_limit_connections", None, None] == 5
    assert series["sockdiag_process_queue_bytes", "unix", "receive"] == sum(
        row["recv_q"] for inode, row in unix.items() if inode not in listening)


DROPPING_RECEIVER = r"""
import socket, sys
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
receiver.bind(("127.0.0.1", 0))
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(receiver.fileno(), flush=True)
for line in sys.stdin:
    for _ in range(int(line)):
        sender.sendto(b"d" * 700, receiver.getsockname())
    print("sent", flush=True)
"""


def test_top_counts_each_process_s_udp_drops_and_its_fullest_receive_buffer(tmp_path):
    """A receiver that never reads drops what its buffer cannot hold: top's
    per-process drops equal the growth of /proc/net/udp's drops column, and
    its fullest buffer equals rx_queue over ss's rb."""
    from sockdiag.accounting import TrafficAccountant

    child = subprocess.Popen([sys.executable, "-c", DROPPING_RECEIVER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        fd = int(child.stdout.readline())
        inode = os.stat(f"/proc/{child.pid}/fd/{fd}").st_ino

        def proc_udp() -> dict[str, int]:
            for line in open("/proc/net/udp").read().splitlines()[1:]:
                fields = line.split()
                if int(fields[9]) == inode:
                    return {"rx_queue": int(fields[4].split(":")[1], 16), "drops": int(fields[-1])}
            raise AssertionError("the receiver is not in /proc/net/udp")

        with TrafficAccountant(pids=[child.pid], closed_sockets=False, trace_connects=False) as accountant:
            before = proc_udp()
            child.stdin.write("300\n")
            child.stdin.flush()
            assert child.stdout.readline() == "sent\n"
            sample = accountant.sample()
        after = proc_udp()
        [row] = [r for r in sample.processes if r.pid == child.pid]
        assert row.udp_drops == after["drops"] - before["drops"] > 0
        assert row.udp_drops_per_s == pytest.approx(row.udp_drops / sample.interval_s)
        [receiver] = [s for s in sockdiag.process_sockets(child.pid, kinds=["udp"]) if s.fd == fd]
        rcvbuf = int(re.search(r"rb(\d+)", subprocess.run(
            ["ss", "-uamnH", "src", f"127.0.0.1:{receiver.local_port}"],
            capture_output=True, text=True, check=True).stdout).group(1))
        assert row.udp_receive_fill == pytest.approx(min(after["rx_queue"] / rcvbuf, 1.0))
    finally:
        child.stdin.close()
        child.wait(timeout=10)
