"""Interface counters: sockdiag.interfaces() against /proc/net/dev and `ip -s -j link`.

In the test process's own namespace other programs move the counters, so
values are checked between two readings of the oracle taken around ours.
In namespaces the tests create, nothing else runs, so values must be equal.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid

import pytest

import sockdiag
from sockdiag import InterfaceCounters, _fast, reference

from conftest import drain, requires_linux, requires_root, wait_until

pytestmark = requires_linux

requires_ip = pytest.mark.skipif(shutil.which("ip") is None, reason="needs ip from iproute2")

COUNTERS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "rx_errors", "tx_errors", "rx_drops",
            "tx_drops")


def proc_net_dev(path: str = "/proc/thread-self/net/dev") -> dict[str, dict[str, int]]:
    """/proc/net/dev of the calling thread's namespace, by interface."""
    result = {}
    with open(path) as f:
        for line in f.readlines()[2:]:
            name, numbers = line.split(":", 1)
            v = [int(x) for x in numbers.split()]
            # The drop column is rx_dropped plus rx_missed_errors, which
            # lo and veth never count: equal to rx_drops on them.
            result[name.strip()] = {
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_drops": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_drops": v[11],
            }
    return result


def ip_links(netns: str | None = None) -> dict[str, dict]:
    """`ip -s -j link show` (in netns when given), by interface."""
    command = ["ip", "-s", "-j", "link", "show"]
    if netns:
        command[1:1] = ["-n", netns]
    links = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {link["ifname"]: link for link in links}


def ip_counters(link: dict) -> dict[str, int]:
    rx, tx = link["stats64"]["rx"], link["stats64"]["tx"]
    return {
        "rx_bytes": rx["bytes"], "rx_packets": rx["packets"], "rx_errors": rx["errors"],
        "rx_drops": rx["dropped"], "tx_bytes": tx["bytes"], "tx_packets": tx["packets"],
        "tx_errors": tx["errors"], "tx_drops": tx["dropped"],
    }


# --- network namespaces the tests create --------------------------------------

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


class Netns:
    """A network namespace `sdtest-…` with a thread living in it.

    ``run(fn, *args)`` calls fn in that thread: sockets it creates (and the
    netlink socket of sockdiag.interfaces()) belong to the namespace.
    """

    def __init__(self) -> None:
        self.name = f"sdtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, initializer=self._enter)
        self.run(lambda: None)  # fail here, not later, if setns does not work
        self.sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")  # no IPv6 chatter
        self.sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        self.ip("link", "set", "lo", "up")

    def _enter(self) -> None:
        fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)

    def run(self, fn, *args):
        return self._pool.submit(fn, *args).result(timeout=60)

    def sh(self, *command: str) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *command], check=True)

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


@pytest.fixture
def netns_factory():
    created: list[Netns] = []

    def make() -> Netns:
        ns = Netns()
        created.append(ns)
        return ns

    try:
        yield make
    finally:
        for ns in created:
            ns.close()


def wait_until_carrier(ns: Netns, name: str) -> None:
    """Until the kernel has seen a veth end's carrier and given it its queue:
    before that (the link watcher runs a little later) frames are dropped
    at the noop qdisc and counted as tx drops."""
    wait_until(lambda: ip_links(ns.name)[name]["operstate"] == "UP"
               and ip_links(ns.name)[name]["qdisc"] == "noqueue")


def generate_loopback_traffic(nbytes: int = 1 << 20, host: str = "127.0.0.1") -> None:
    """Send nbytes over a TCP connection on loopback (bounded, closed on exit)."""
    with socket.socket() as listener:
        listener.bind((host, 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname(), timeout=5) as client:
            server, _ = listener.accept()
            with server:
                reader = threading.Thread(target=drain, args=(server, nbytes))
                reader.start()
                client.sendall(b"x" * nbytes)
                reader.join(10)


# --- the test process's own namespace: ours between two oracle readings --------


def assert_between(name: str, before: dict, ours: InterfaceCounters, after: dict) -> None:
    for key in before:
        if key == "rx_drops":
            # /proc adds rx_missed_errors (a NIC's) to rx_dropped
            assert ours.rx_drops <= after[key], name
            continue
        assert before[key] <= getattr(ours, key) <= after[key], (name, key)


def test_interfaces_between_two_proc_net_dev_readings():
    generate_loopback_traffic()
    before = proc_net_dev()
    ours = sockdiag.interfaces()
    after = proc_net_dev()
    # Other programs may add or remove interfaces meanwhile.
    assert set(before) & set(after) <= set(ours) <= set(before) | set(after)
    for name in set(before) & set(after) & set(ours):
        assert ours[name].name == name
        assert_between(name, before[name], ours[name], after[name])
    assert ours["lo"].rx_bytes >= 1 << 20


@requires_ip
def test_interfaces_between_two_ip_link_readings():
    generate_loopback_traffic()
    before = ip_links()
    ours = sockdiag.interfaces()
    after = ip_links()
    assert set(before) & set(after) <= set(ours) <= set(before) | set(after)
    for name in set(before) & set(after) & set(ours):
        counters = ours[name]
        assert counters.index == before[name]["ifindex"]
        assert counters.mtu == before[name]["mtu"]
        assert counters.is_up == ("UP" in before[name]["flags"])
        for key, low in ip_counters(before[name]).items():
            assert low <= getattr(counters, key) <= ip_counters(after[name])[key], (name, key)


def test_loopback_counters_move_with_traffic():
    before = sockdiag.interfaces()["lo"]
    generate_loopback_traffic(4 << 20)
    after = sockdiag.interfaces()["lo"]
    # Both directions of one TCP connection cross lo: payload is counted once
    # as transmitted and once as received, headers add to it.
    assert after.tx_bytes - before.tx_bytes >= 4 << 20
    assert after.rx_bytes - before.rx_bytes >= 4 << 20
    assert after.tx_packets > before.tx_packets
    assert after.is_up and after.mtu == 65536 and after.index == 1


# --- namespaces the tests create: nothing else moves the counters --------------


@requires_root
@requires_ip
def test_fresh_namespace_loopback_equals_proc_and_ip(netns_factory):
    ns = netns_factory()
    ns.run(generate_loopback_traffic, 3 << 20)
    ours = ns.run(sockdiag.interfaces)
    assert set(ours) == {"lo"}
    proc = ns.run(proc_net_dev)["lo"]
    ip = ip_counters(ip_links(ns.name)["lo"])
    for key in COUNTERS:
        assert getattr(ours["lo"], key) == proc[key] == ip[key], key
    assert ours["lo"].rx_bytes >= 3 << 20
    assert ns.run(reference.interfaces) == ours  # the pure-Python dump agrees


@requires_root
@requires_ip
def test_veth_pair_between_namespaces(netns_factory):
    a, b = netns_factory(), netns_factory()
    a.ip("link", "add", "sdveth0", "type", "veth", "peer", "name", "sdveth1", "netns", b.name)
    a.ip("addr", "add", "10.213.0.1/30", "dev", "sdveth0")
    b.ip("addr", "add", "10.213.0.2/30", "dev", "sdveth1")
    a.ip("link", "set", "sdveth0", "up")
    b.ip("link", "set", "sdveth1", "up")
    wait_until_carrier(a, "sdveth0")
    wait_until_carrier(b, "sdveth1")

    start_a, start_b = a.run(sockdiag.interfaces)["sdveth0"], b.run(sockdiag.interfaces)["sdveth1"]
    nbytes = 2 << 20
    listener = b.run(socket.create_server, ("10.213.0.2", 0))
    with listener:
        client = a.run(socket.create_connection, ("10.213.0.2", listener.getsockname()[1]), 5)
        server, _ = listener.accept()
        with client, server:
            reader = threading.Thread(target=drain, args=(server, nbytes))
            reader.start()
            client.sendall(b"y" * nbytes)
            reader.join(10)

    def settled():
        end_a, end_b = a.run(sockdiag.interfaces)["sdveth0"], b.run(sockdiag.interfaces)["sdveth1"]
        same = (end_a.tx_bytes == end_b.rx_bytes and end_a.rx_bytes == end_b.tx_bytes
                and end_a.tx_packets == end_b.rx_packets and end_a.rx_packets == end_b.tx_packets)
        return same and (end_a, end_b)

    end_a, end_b = wait_until(settled)
    assert end_a.tx_bytes - start_a.tx_bytes >= nbytes
    assert end_b.rx_bytes - start_b.rx_bytes >= nbytes
    assert end_a.tx_drops == end_b.rx_drops == 0
    assert end_a.is_up and end_b.is_up and end_a.mtu == end_b.mtu == 1500
    for ns, name, ours in ((a, "sdveth0", end_a), (b, "sdveth1", end_b)):
        proc = ns.run(proc_net_dev)[name]
        ip_link = ip_links(ns.name)[name]
        assert ours.index == ip_link["ifindex"]
        for key in COUNTERS:
            assert getattr(ours, key) == proc[key] == ip_counters(ip_link)[key], (name, key)


def send_frames(interface: str, count: int, payload_bytes: int) -> None:
    """count broadcast Ethernet frames of an EtherType no one handles (IEEE's
    local experimental 0x88b5) out of interface; a drop on the way is ENOBUFS."""
    frame = b"\xff" * 6 + b"\x02" * 6 + b"\x88\xb5" + b"z" * payload_bytes
    # Protocol 0: this socket receives nothing, so it is no handler for the frames.
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:
        sock.bind((interface, 0))
        for _ in range(count):
            try:
                sock.send(frame)
            except OSError as err:
                assert err.errno == errno.ENOBUFS, err


@requires_root
@requires_ip
def test_rx_and_tx_drops_are_the_kernels(netns_factory):
    """Real drops, told apart.  sdveth0 (MTU 9000) sends 5 frames of 3,000
    bytes: its peer (MTU 1500) refuses them, a tx drop on sdveth0 and an rx
    drop on sdveth1.  sdveth1 sends 3 small frames of a type no one handles:
    rx drops on sdveth0.  The exporter's series are the same numbers."""
    pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    from sockdiag import export, exposition

    a, b = netns_factory(), netns_factory()
    a.ip("link", "add", "sdveth0", "mtu", "9000", "type", "veth", "peer", "name", "sdveth1",
         "netns", b.name)
    a.ip("link", "set", "sdveth0", "up")
    b.ip("link", "set", "sdveth1", "up")
    wait_until_carrier(a, "sdveth0")
    wait_until_carrier(b, "sdveth1")
    a.run(send_frames, "sdveth0", 5, 3000)
    b.run(send_frames, "sdveth1", 3, 100)
    wanted = {("sdveth0", "rx_drops"): 3, ("sdveth0", "tx_drops"): 5,
              ("sdveth1", "rx_drops"): 5, ("sdveth1", "tx_drops"): 0}
    for ns, name in ((a, "sdveth0"), (b, "sdveth1")):
        ours = ns.run(sockdiag.interfaces)[name]
        proc = ns.run(proc_net_dev)[name]
        ip = ip_counters(ip_links(ns.name)[name])
        for key in COUNTERS:
            assert getattr(ours, key) == proc[key] == ip[key], (name, key)
        for key in ("rx_drops", "tx_drops"):
            assert getattr(ours, key) == wanted[name, key], (name, key)
        assert ns.run(reference.interfaces)[name] == ours  # the pure-Python dump agrees
        # One scrape's interface series: exactly the kernel's, every counter.
        text = ns.run(lambda: exposition.scrape(export.Collector()).decode())
        samples = {(s.name, s.labels.get("interface")): s.value
                   for f in text_string_to_metric_families(text)
                   for s in f.samples}
        for field, metric, _help in export.INTERFACE_COUNTERS:
            assert samples[metric + "_total", name] == getattr(ours, field), (name, field)
        assert samples["sockdiag_interface_receive_drops_total", name] == wanted[name, "rx_drops"]
        assert samples["sockdiag_interface_transmit_drops_total", name] == wanted[name, "tx_drops"]


@requires_root
@requires_ip
def test_stats_dump_with_ioctls_equals_the_link_dump(netns_factory):
    """RTM_GETSTATS plus each link's name, flags and MTU by ioctl (the default)
    gives what an RTM_GETLINK dump (a kernel before 4.7) gives, field for field."""
    ns = netns_factory()
    ns.run(generate_loopback_traffic, 1 << 20)
    ns.ip("link", "add", "sdup0", "mtu", "1400", "type", "veth", "peer", "name", "sddown0", "mtu", "9000")
    ns.ip("link", "set", "sdup0", "up")
    by_stats = ns.run(_fast.rtnl_interfaces)
    by_links = ns.run(lambda: _fast.rtnl_interfaces(link_dump=True))
    assert set(by_stats) == {"lo", "sdup0", "sddown0"}
    assert by_stats == by_links
    links = ip_links(ns.name)
    for name, ours in by_stats.items():
        assert (ours.index, ours.mtu, ours.is_up) == (
            links[name]["ifindex"], links[name]["mtu"], "UP" in links[name]["flags"]), name
    assert (by_stats["sdup0"].mtu, by_stats["sddown0"].mtu) == (1400, 9000)
    assert by_stats["sdup0"].is_up and not by_stats["sddown0"].is_up
    assert by_stats["lo"].rx_bytes >= 1 << 20


@requires_root
@requires_ip
def test_counter_beyond_4_gib_does_not_wrap(netns_factory):
    # lo of a fresh namespace starts at 0.  66,000 UDP datagrams of 65,507
    # bytes to a closed port: 65,535 bytes each on the wire (lo's MTU is 64 KiB,
    # no fragments), 4.33 GB in all, plus the ICMP errors coming back; about
    # half a second of copying.
    ns = netns_factory()
    datagrams, payload = 66_000, b"\0" * 65_507

    def blast() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(datagrams):
                sock.sendto(payload, ("127.0.0.1", 9))

    ns.run(blast)
    lo = ns.run(sockdiag.interfaces)["lo"]
    assert lo.tx_bytes >= datagrams * 65_535 > 1 << 32
    assert lo.rx_bytes == lo.tx_bytes
    assert lo.tx_packets >= datagrams
    proc = ns.run(proc_net_dev)["lo"]
    ip = ip_counters(ip_links(ns.name)["lo"])
    for key in COUNTERS:
        assert getattr(lo, key) == proc[key] == ip[key], key


@requires_root
def test_interfaces_follow_the_calling_threads_namespace(netns_factory):
    ns = netns_factory()
    ns.ip("link", "add", "sdveth0", "type", "veth", "peer", "name", "sdveth1")
    inside = ns.run(sockdiag.interfaces)
    assert set(inside) == {"lo", "sdveth0", "sdveth1"}
    assert inside["sdveth0"].is_up is False and inside["lo"].is_up is True
    assert "sdveth0" not in sockdiag.interfaces()


@pytest.fixture
def churning_namespace(netns_factory, tmp_path):
    """A namespace with lo + 100 veth ends, where one `ip -batch` adds and deletes a veth pair in a loop.

    The dump spans several datagrams, and about 1 dump in 1,000 (6 a second,
    measured here) comes back marked NLM_F_DUMP_INTR: a race, nine times as
    often with one churning process as with two `ip` runs per change.
    """
    ns = netns_factory()
    batch = tmp_path / "links.ip"
    batch.write_text("".join(f"link add sdv{i}a type veth peer name sdv{i}b\n" for i in range(50)))
    ns.ip("-batch", str(batch))
    churner = subprocess.Popen(["ip", "-n", ns.name, "-force", "-batch", "-"],
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    stop = threading.Event()

    def churn() -> None:
        changes = "link add sdchurn0 type veth peer name sdchurn1\nlink delete sdchurn0\n" * 20
        try:
            while not stop.is_set():
                churner.stdin.write(changes)
                churner.stdin.flush()
        except (BrokenPipeError, ValueError):  # the churner was killed, its pipe closed
            pass

    feeder = threading.Thread(target=churn)
    feeder.start()
    try:
        yield ns
    finally:
        stop.set()
        churner.kill()  # its backlog of changes is seconds long, and the namespace goes anyway
        churner.wait(30)
        feeder.join(30)
        with contextlib.suppress(BrokenPipeError):
            churner.stdin.close()


def capture_until(predicate, timeout: float):
    """Call predicate until it returns a value (not None) or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found is not None:
            return found
    raise AssertionError(f"nothing found within {timeout} s")


@requires_root
@requires_ip
def test_interrupted_dumps_are_detected_and_retried(churning_namespace):
    ns = churning_namespace

    def one_interrupted_attempt():
        try:
            _fast.rtnl_interfaces(1)
        except OSError as err:
            assert err.errno == errno.EAGAIN
            return err
        return None

    # A single dump that comes back interrupted is refused, not returned ...
    # (Interruptions are a race: the wait is long so that a slow machine still sees one.)
    ns.run(capture_until, one_interrupted_attempt, 45.0)

    # ... and with retries every call succeeds, each result one snapshot:
    # every static link, and both ends of the churned pair or neither.
    def snapshots() -> int:
        static = {f"sdv{i}{end}" for i in range(50) for end in "ab"} | {"lo"}
        deadline, count = time.monotonic() + 1.0, 0
        while time.monotonic() < deadline:
            names = set(sockdiag.interfaces())
            assert names - static in (set(), {"sdchurn0", "sdchurn1"})
            assert static <= names
            count += 1
        return count

    assert ns.run(snapshots) > 20
