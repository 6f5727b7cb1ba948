"""A refresh that costs what is watched: exact requests after a first pass,
held equal to a full dump on churning sockets, and many processes in one pass."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

import sockdiag
from sockdiag import _fast, reference
from sockdiag._linux import state_mask
from testsupport.children import end
from testsupport.loopback import connected_pair, wait_until

from conftest import requires_linux

pytestmark = requires_linux

MASK = state_mask(None)

# A child that changes its sockets on command, one line per command, "ok" when done.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHURNER = textwrap.dedent(f"""
    import socket, struct, sys, time
    sys.path.insert(0, {ROOT!r})
    from testsupport.loopback import fill
    listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(256)
    pairs, extra = [], []
    for line in sys.stdin:
        command, _, n = line.strip().partition(" ")
        n = int(n or 0)
        if command == "open":
            for _ in range(n):
                c = socket.create_connection(listener.getsockname()); s, _ = listener.accept()
                pairs.append((c, s))
        elif command == "close":
            for c, s in pairs[:n]:
                c.close(); s.close()
            del pairs[:n]
        elif command == "shutdown":  # FIN_WAIT2 and CLOSE_WAIT
            for c, _ in pairs[-n:]:
                c.shutdown(socket.SHUT_WR)
        elif command == "fill":
            for c, _ in pairs[:n]:
                fill(c)
        elif command == "reset":  # a held socket the peer resets: CLOSE, in no hash table
            c = socket.create_connection(listener.getsockname()); s, _ = listener.accept()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); s.close()
            time.sleep(0.05)
            extra.append(c)
        elif command == "unconnected":
            extra.append(socket.socket())
        elif command == "drop-extra":
            for sock in extra:
                sock.close()
            extra.clear()
        time.sleep(0.1)  # let loopback settle: the two reads below see the same queues
        print("ok", flush=True)
""")


def _key(info):
    return (info.inode, info.fd, info.family, info.local_address, info.local_port,
            info.remote_address, info.remote_port, info.state, info.send_queue, info.unsent,
            info.recv_queue)


@pytest.fixture
def busy_machine():
    """300 sockets in this process: the watched children are small beside them."""
    pairs = [connected_pair() for _ in range(150)]
    yield
    for client, server in pairs:
        client.close()
        server.close()


@pytest.fixture
def churner():
    child = subprocess.Popen([sys.executable, "-c", CHURNER], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)

    def command(line: str) -> None:
        child.stdin.write(line + "\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "ok"

    command.pid = child.pid
    yield command
    end(child)


def test_targeted_refresh_equals_a_full_dump_on_churning_sockets(busy_machine, churner):
    known = _fast.KnownSockets()
    # (command, the pass the refresh must take: exact requests alone, or a dump)
    steps = [("open 5", "dump"), ("noop", "exact"), ("shutdown 2", "exact"), ("fill 3", "exact"),
             ("close 1", "exact"), ("open 30", "dump"),  # 66 sockets: more than one batch of requests
             ("noop", "exact"), ("close 20", "exact"), ("reset", "dump"), ("drop-extra", "exact"),
             ("unconnected", "dump"), ("drop-extra", "exact")]
    only = state_mask(["ESTABLISHED"])
    for command, expected_pass in steps:
        churner(command)
        before = known.exact_passes
        targeted = _fast.process_sockets_linux(churner.pid, MASK, None, known)
        took = "exact" if known.exact_passes > before else "dump"
        assert took == expected_pass, command
        _assert_same(targeted, lambda: _fast.process_sockets_linux(churner.pid, MASK, None, known),
                     lambda: _fast.process_sockets_linux(churner.pid, MASK), command)
        # And with a state filter (the kernel's on a dump, ours on exact answers).
        _assert_same(None, lambda: _fast.process_sockets_linux(churner.pid, only, None, known),
                     lambda: _fast.process_sockets_linux(churner.pid, only), command)


def _assert_same(first, targeted, full, command) -> None:
    """targeted() gives what full() gives.  Loopback may still move a few KiB
    of a full send buffer between the two reads: those are read again."""
    found = first if first is not None else targeted()
    for _ in range(10):
        expected = full()
        if sorted(map(_key, found)) == sorted(map(_key, expected)):
            return
        time.sleep(0.05)
        found = targeted()
    assert sorted(map(_key, found)) == sorted(map(_key, expected)), command


def test_process_sockets_refresh_asks_by_name(busy_machine, churner):
    """The public call learns between calls: the second look at a small process sends exact requests."""
    from sockdiag import _linux

    churner("open 5")
    first = sockdiag.process_sockets(churner.pid)
    exact = _linux._KNOWN.exact_passes
    second = sockdiag.process_sockets(churner.pid)
    assert _linux._KNOWN.exact_passes == exact + 1
    assert sorted(map(_key, first)) == sorted(map(_key, second))


def test_reference_asks_by_name_as_the_core_does(busy_machine, churner):
    churner("open 4")
    churner("shutdown 1")
    fds = reference.socket_fds(churner.pid)
    names = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, reference.NETLINK_SOCK_DIAG) as nl:
        for family in (2, 10):
            request = reference._DIAG_REQUEST.pack(
                reference._DIAG_REQUEST.size, reference.SOCK_DIAG_BY_FAMILY, 0x301, 0, 0, family,
                socket.IPPROTO_TCP, 0, 0, MASK, 0, 0, b"", b"", 0, b"")
            for datagram in reference.netlink_dump(nl, request, 3, True):
                for kind, _flags, message in reference.netlink_messages(datagram):
                    if kind == reference.SOCK_DIAG_BY_FAMILY:
                        inode = reference._DIAG_MSG.unpack_from(message)[14]
                        if inode in fds:
                            names[inode] = reference.diag_name(message)
    asked = reference.asked_sockets(names, fds)
    known = _fast.KnownSockets()
    _fast.process_sockets_linux(churner.pid, MASK, None, known)
    core = _fast.process_sockets_linux(churner.pid, MASK, None, known)
    assert known.exact_passes == 1
    assert sorted(map(_key, asked)) == sorted(map(_key, core))
    # A name the kernel no longer knows.
    churner("close 4")
    assert reference.asked_sockets(names, fds) is None


def _holder(listener: socket.socket, connections: int) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import socket, sys
        l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
        keep = []
        for _ in range({connections}):
            c = socket.create_connection(l.getsockname()); s, _ = l.accept(); keep += [c, s]
        print("ready", flush=True)
        sys.stdin.read()
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, pass_fds=[listener.fileno()])
    assert child.stdout.readline().strip() == "ready"
    return child


def test_several_processes_in_one_pass(busy_machine):
    """Each process gets what process_sockets gives it, a shared socket under each with its fd."""
    shared = socket.create_server(("127.0.0.1", 0))
    children = [_holder(shared, n) for n in (3, 5, 8)]
    try:
        pids = [child.pid for child in children]
        for _ in range(2):  # a first pass (dump) and a refresh (exact requests)
            together = sockdiag.sockets_of_processes(pids + [0x3FFFFF])
            assert sorted(together) == sorted(pids)  # no such process: left out
            for pid in pids:
                alone = sockdiag.process_sockets(pid)
                assert sorted(map(_key, together[pid])) == sorted(map(_key, alone))
                assert shared.getsockname()[1] in {s.local_port for s in together[pid]}
    finally:
        for child in children:
            end(child)
        shared.close()


def test_exporter_start_reads_no_socket_and_its_first_scrape_dumps_once(busy_machine):
    """Processes whose sockets are not yet known share one dump: the exporter's
    start checks access without reading sockets, its first scrape reads all
    of them in one pass, and the next scrape asks for them by name."""
    from sockdiag import _linux, export, exposition

    shared = socket.create_server(("127.0.0.1", 0))
    children = [_holder(shared, 3) for _ in range(4)]
    try:
        passes = (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes)
        collector = export.Collector([child.pid for child in children])
        assert (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes) == passes
        scrape = export.registry(collector)
        first = exposition.text_format(scrape.collect())
        assert (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes) == (passes[0] + 1, passes[1])
        exposition.text_format(scrape.collect())
        assert (_linux._KNOWN.dump_passes, _linux._KNOWN.exact_passes) == (passes[0] + 1, passes[1] + 1)
        assert b"sockdiag_watched_processes 4.0" in first
    finally:
        for child in children:
            end(child)
        shared.close()


def test_several_processes_errors_stay_per_process():
    from sockdiag import _platform

    found = _platform.sockets_of_processes([os.getpid(), 0x3FFFFF])
    assert isinstance(found[os.getpid()], list)
    assert isinstance(found[0x3FFFFF], sockdiag.NoSuchProcess)


def test_several_processes_a_zombie_is_no_such_process_not_an_empty_list():
    # A process exiting during a pass leaves an empty fd table: the pass itself
    # checks afterwards that each process still runs.
    from sockdiag import _platform

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    client, server = connected_pair()
    try:
        wait_until(lambda: _platform.process_state(zombie.pid) == "Z")
        found = _platform.sockets_of_processes([os.getpid(), zombie.pid])
        assert isinstance(found[os.getpid()], list) and found[os.getpid()]
        assert isinstance(found[zombie.pid], sockdiag.NoSuchProcess)
        assert "exited" in str(found[zombie.pid])
    finally:
        zombie.wait()
        client.close()
        server.close()


def test_process_state_reads_past_a_name_holding_a_parenthesis():
    """The state follows the last ")" of /proc/<pid>/stat: a process may name
    itself ") Z (" and still be running, as ps says."""
    from sockdiag import _platform

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nopen('/proc/self/comm', 'w').write(') Z (')\n"
                               "print(flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()
        shown = subprocess.run(["ps", "-o", "stat=", "-p", str(child.pid)],
                               capture_output=True, text=True).stdout.strip()
        assert _platform.process_state(child.pid) == shown[:1] != "Z"
        assert isinstance(_platform.sockets_of_processes([child.pid])[child.pid], list)
    finally:
        child.stdin.close()
        child.wait()
    assert _platform.process_state(child.pid) is None
