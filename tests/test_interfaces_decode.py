"""Decoders of rtnetlink link dumps: synthetic, captured and hostile buffers.

The synthetic dumps are built here with struct, independently of the
Cython walker, and every decode is compared against what was encoded.
Each test runs on the Cython decoders (sockdiag.decode) and on the
pure-Python reference (sockdiag.reference), and garbage must get the same
answer from both.
"""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sockdiag
from sockdiag import LinkStats64, decode, reference

LINK_STATS64_FIELDS = LinkStats64._fields
NLMSG_ERROR, NLMSG_DONE, NLMSG_NOOP, RTM_NEWLINK = 2, 3, 1, 16
NLM_F_MULTI, NLM_F_DUMP_INTR = 0x2, 0x10
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_STATS64 = 1, 3, 4, 23


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def nlmsg(type_: int, body: bytes, flags: int = NLM_F_MULTI, pad: bool = True) -> bytes:
    message = struct.pack("=IHHII", 16 + len(body), type_, flags, 1, 4242) + body
    return pad4(message) if pad else message


def rtattr(type_: int, payload: bytes) -> bytes:
    return pad4(struct.pack("=HH", 4 + len(payload), type_) + payload)


def link_message(name: str, index: int, flags: int, mtu: int, stats: list[int],
                 extra: bytes = b"", message_flags: int = NLM_F_MULTI) -> bytes:
    body = (struct.pack("=BxHiII", 0, 1, index, flags, 0)
            + rtattr(IFLA_ADDRESS, b"\x02\0\0\0\0\x01")  # 6 bytes: the next one is padded
            + rtattr(IFLA_IFNAME, name.encode() + b"\0")
            + extra
            + rtattr(IFLA_MTU, struct.pack("=I", mtu))
            + rtattr(IFLA_STATS64, struct.pack(f"={len(stats)}Q", *stats)))
    return nlmsg(RTM_NEWLINK, body, message_flags)


both = pytest.mark.parametrize("impl", [decode, reference], ids=["cython", "python"])

DONE = nlmsg(NLMSG_DONE, struct.pack("=i", 0))

u64 = st.integers(0, 2**64 - 1)
links = st.lists(
    st.tuples(
        st.text("abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=15),
        st.integers(1, 2**31 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.lists(u64, min_size=23, max_size=25),
    ),
    max_size=8,
    unique_by=lambda link: link[0],
)


# --- rtnl_link_stats64 -----------------------------------------------------------


@both
@given(st.binary(max_size=300))
def test_link_stats64_matches_struct_or_raises(impl, data):
    if len(data) < 184:
        with pytest.raises(ValueError):
            impl.rtnl_link_stats64(data)
        return
    stats = impl.rtnl_link_stats64(data)
    count = min(len(data) // 8, 25)
    expected = struct.unpack_from(f"={count}Q", data)
    for i, name in enumerate(LINK_STATS64_FIELDS):
        assert getattr(stats, name) == (expected[i] if i < count else None), name


@both
@pytest.mark.parametrize("length, nohandler, otherhost", [
    (184, None, None),   # 2.6.35 .. 4.5
    (192, 23, None),     # 4.6 .. 5.18
    (200, 23, 24),       # 5.19 and later
    (204, 23, 24),       # a longer future struct: the rest is ignored
])
def test_link_stats64_by_kernel_age(impl, length, nohandler, otherhost):
    data = struct.pack("=25Q", *range(25)) + b"\xff" * 8
    stats = impl.rtnl_link_stats64(data[:length])
    assert (stats.rx_packets, stats.tx_bytes, stats.tx_compressed) == (0, 3, 22)
    assert (stats.rx_nohandler, stats.rx_otherhost_dropped) == (nohandler, otherhost)


@both
def test_link_stats64_misaligned_buffer(impl):
    data = bytearray(b"\0" + struct.pack("=25Q", *range(100, 125)))
    assert impl.rtnl_link_stats64(memoryview(data)[1:]).rx_packets == 100


# --- whole dumps -------------------------------------------------------------------


@both
@given(links, st.integers(0, 3))
def test_synthetic_dump_round_trip(impl, interfaces, noops):
    dump = (nlmsg(NLMSG_NOOP, b"") * noops
            + b"".join(link_message(*link) for link in interfaces) + DONE)
    decoded = impl.rtnl_link_dump(dump)
    assert list(decoded) == [link[0] for link in interfaces]
    for name, index, flags, mtu, stats in interfaces:
        counters = decoded[name]
        assert (counters.name, counters.index, counters.is_up, counters.mtu) == (name, index, bool(flags & 1), mtu)
        assert (counters.rx_packets, counters.tx_packets, counters.rx_bytes, counters.tx_bytes,
                counters.rx_errors, counters.tx_errors, counters.rx_drops, counters.tx_drops) == tuple(stats[:8])


@both
def test_dump_message_without_stats_has_no_counters(impl):
    body = struct.pack("=BxHiII", 0, 1, 7, 1, 0) + rtattr(IFLA_IFNAME, b"x0\0")
    counters = impl.rtnl_link_dump(nlmsg(RTM_NEWLINK, body) + DONE)["x0"]
    assert counters.index == 7 and counters.is_up and counters.mtu is None
    assert counters.rx_bytes is None and counters.tx_drops is None


@both
def test_last_message_without_padding(impl):
    one = link_message("eth9", 9, 1, 1500, list(range(23)))
    done_unpadded = nlmsg(NLMSG_DONE, b"\0\0\0\0", pad=False)
    assert impl.rtnl_link_dump(one + done_unpadded)["eth9"].tx_bytes == 3


@both
@pytest.mark.parametrize("dump, message", [
    (b"", "NLMSG_DONE"),
    (link_message("a", 1, 0, 1, [0] * 23), "NLMSG_DONE"),
    (link_message("a", 1, 0, 1, [0] * 23, message_flags=NLM_F_MULTI | NLM_F_DUMP_INTR) + DONE,
     "interrupted"),
    (nlmsg(NLMSG_ERROR, struct.pack("=i", -1) + b"\0" * 16), "netlink error"),
    (nlmsg(NLMSG_ERROR, b""), "error code"),
    (nlmsg(NLMSG_ERROR, struct.pack("=i", -2**31)), "error code -2147483648"),
    (nlmsg(NLMSG_ERROR, struct.pack("=i", 5)), "error code 5"),
    (struct.pack("=IHHII", 0, RTM_NEWLINK, 0, 0, 0) + DONE, "message of 0 bytes"),
    (struct.pack("=IHHII", 1 << 31, RTM_NEWLINK, 0, 0, 0) + DONE, "message of 2147483648 bytes"),
    (DONE[:15], "truncated netlink message"),
    (nlmsg(RTM_NEWLINK, b"\0" * 15) + DONE, "shorter than ifinfomsg"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + struct.pack("=HH", 0, IFLA_MTU)) + DONE, "attribute of 0 bytes"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + struct.pack("=HH", 99, IFLA_MTU)) + DONE, "attribute of 99 bytes"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + b"\x08\0") + DONE, "truncated attribute"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + rtattr(IFLA_MTU, b"\1\2")) + DONE, "IFLA_MTU of 2 bytes"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + rtattr(IFLA_IFNAME, b"\0")) + DONE, "IFLA_IFNAME is empty"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + rtattr(IFLA_STATS64, b"\0" * 64)) + DONE, "IFLA_STATS64 of 64"),
    (nlmsg(RTM_NEWLINK, b"\0" * 16 + rtattr(IFLA_MTU, b"\0" * 4)) + DONE, "without IFLA_IFNAME"),
])
def test_dump_hostile_or_incomplete_raises(impl, dump, message):
    with pytest.raises(ValueError, match=message):
        impl.rtnl_link_dump(dump)


def assert_same_answer(dump: bytes) -> None:
    """The Cython decoder and the reference both refuse dump, or agree on it."""
    try:
        result = decode.rtnl_link_dump(dump)
    except ValueError:
        with pytest.raises(ValueError):
            reference.rtnl_link_dump(dump)
        return
    assert result == reference.rtnl_link_dump(dump)


@settings(max_examples=300)
@given(st.binary(max_size=2048))
def test_dump_garbage_same_answer_from_both(data):
    assert_same_answer(data)


@settings(max_examples=200)
@given(links, st.data())
def test_dump_mutations_same_answer_from_both(interfaces, data):
    dump = bytearray(b"".join(link_message(*link) for link in interfaces) + DONE)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(dump) - 1))
        dump[position] = data.draw(st.integers(0, 255))
    assert_same_answer(bytes(dump[: data.draw(st.integers(0, len(dump)))]))


@both
@given(links, st.integers(0, 200))
def test_dump_cut_before_done_raises(impl, interfaces, shortfall):
    dump = b"".join(link_message(*link) for link in interfaces) + DONE
    with pytest.raises(ValueError):
        impl.rtnl_link_dump(dump[: max(0, len(dump) - 1 - shortfall)])


# --- a dump captured from the running kernel -----------------------------------


def capture_getlink_dump() -> bytes:
    """The datagrams of one RTM_GETLINK dump, read with Python's own socket module."""
    request = struct.pack("=IHHIIBxHiII", 32, 18, 0x301, 1, 0, socket.AF_UNSPEC, 0, 0, 0, 0)
    datagrams = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.send(request)
        while True:
            datagram = sock.recv(1 << 16)
            datagrams.append(datagram)
            offset = 0
            while offset < len(datagram):
                length, type_ = struct.unpack_from("=IH", datagram, offset)
                if type_ in (NLMSG_DONE, NLMSG_ERROR):
                    return b"".join(datagrams)
                offset += (length + 3) & ~3


def stats64_payloads(dump: bytes) -> dict[int, bytes]:
    """{ifindex: IFLA_STATS64 payload}, walked with struct."""
    found, offset = {}, 0
    while offset < len(dump):
        length, type_ = struct.unpack_from("=IH", dump, offset)
        if type_ == RTM_NEWLINK:
            index = struct.unpack_from("=i", dump, offset + 20)[0]
            attr = offset + 32
            while attr < offset + length:
                attr_length, attr_type = struct.unpack_from("=HH", dump, attr)
                if attr_type == IFLA_STATS64:
                    found[index] = dump[attr + 4: attr + attr_length]
                attr += (attr_length + 3) & ~3
        offset += (length + 3) & ~3
    return found


@pytest.mark.skipif(not sockdiag.LINUX, reason="rtnetlink is Linux-only")
def test_captured_kernel_dump():
    dump = capture_getlink_dump()
    decoded = decode.rtnl_link_dump(dump)
    live = sockdiag.interfaces()
    assert set(decoded) == set(live)
    payloads = stats64_payloads(dump)
    for name, counters in decoded.items():
        assert (counters.index, counters.mtu, counters.is_up) == (live[name].index, live[name].mtu, live[name].is_up)
        assert counters.rx_bytes <= live[name].rx_bytes and counters.tx_packets <= live[name].tx_packets
        stats = decode.rtnl_link_stats64(payloads[counters.index])
        assert len(payloads[counters.index]) in (184, 192, 200)  # by kernel age
        assert (stats.rx_bytes, stats.tx_bytes, stats.rx_dropped) == (
            counters.rx_bytes, counters.tx_bytes, counters.rx_drops)
