"""The public API's contract: which names exist on which platform (psutil's habit)."""

from __future__ import annotations

import copy
import importlib.machinery
import pickle

import pytest

import sockdiag
from sockdiag._common import LINUX, MACOS

EVERYWHERE = {
    # errors
    "SockdiagError", "NoSuchProcess", "AccessDenied", "NotSupported", "UnsuitableSocket",
    # structs
    "FrozenStruct", "SendBuffer", "TcpInfo", "SocketInfo", "InterfaceCounters", "InterfaceRates",
    "LinkStats64", "Sample", "RecordingSummary", "FdHeadroom", "ProcessTraffic", "TrafficSample",
    "TcpDestroyEvent", "UserSpaceNetworking", "BudgetExceeded",
    # one socket you own
    "send_buffer", "socket_queues", "SocketQueues", "tcp_info", "get_notsent_lowat", "set_notsent_lowat",
    "record", "record_stream", "Recording", "InstrumentedSocket", "LowatTuner",
    # other processes and the machine
    "process_sockets", "sockets_of_processes", "SOCKET_KINDS", "interfaces", "interface_rates", "fd_headroom",
    # pure decoders
    "decode",
}
# sock_diag's destroy notifications have no macOS counterpart.
LINUX_ONLY = {"process_traffic", "TrafficAccountant", "ByteBudget", "cgroup_sockets"}
MACOS_ONLY = {"userspace_networking"}
HERE = EVERYWHERE | (LINUX_ONLY if LINUX else set()) | (MACOS_ONLY if MACOS else set())


def test_public_names_per_platform():
    assert set(sockdiag.__all__) == HERE
    for name in (LINUX_ONLY | MACOS_ONLY) - HERE:
        assert not hasattr(sockdiag, name), f"{name} does not exist on this platform"


@pytest.mark.parametrize("name", sorted(HERE))
def test_every_public_name_exists_and_is_documented(name):
    value = getattr(sockdiag, name)
    assert (value.__doc__ or "").strip(), f"sockdiag.{name} has no docstring"


def test_records_are_frozen_slotted_classes_on_one_base():
    structs = [value for name in sockdiag.__all__
               if isinstance(value := getattr(sockdiag, name), type) and issubclass(value, sockdiag.FrozenStruct)]
    assert sockdiag.SocketInfo in structs and sockdiag.TcpInfo in structs
    for struct in structs:
        assert "__slots__" in vars(struct), struct
    info = sockdiag.SendBuffer(size=4, unacked=1, unsent=2, free=1)
    assert not hasattr(info, "__dict__")
    with pytest.raises(AttributeError):
        info.size = 5
    with pytest.raises(AttributeError):
        info.other = 5
    assert info == sockdiag.SendBuffer(4, 1, 2, 1) and hash(info) == hash(sockdiag.SendBuffer(4, 1, 2, 1))
    assert info.replace(unsent=3) == sockdiag.SendBuffer(4, 1, 3, 1)
    assert repr(info) == "SendBuffer(size=4, unacked=1, unsent=2, free=1)"
    assert copy.deepcopy(info) == pickle.loads(pickle.dumps(info)) == info


def test_a_record_class_lists_its_fields_after_its_bases():
    class Base(sockdiag.FrozenStruct):
        first: int
        second: int = 2

    class Derived(Base):
        second: int = 20  # a new default, not a new field
        third: str = "x"

    assert Derived._fields == ("first", "second", "third")
    assert Derived(1).asdict() == {"first": 1, "second": 20, "third": "x"}
    with pytest.raises(TypeError):
        Derived()
    with pytest.raises(TypeError):
        class Disordered(sockdiag.FrozenStruct):
            with_default: int = 0
            without: int


def test_errors_derive_from_one_root():
    for name in ("NoSuchProcess", "AccessDenied", "NotSupported", "UnsuitableSocket"):
        assert issubclass(getattr(sockdiag, name), sockdiag.SockdiagError), name


def test_the_extension_is_compiled():
    import sockdiag._fast as fast

    assert fast.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    assert sockdiag.send_buffer is fast.send_buffer


def test_decoders_are_importable_everywhere():
    for name in ("tcp_info_linux", "tcp_info_darwin", "tcp_connection_info_darwin", "socket_fdinfo_darwin",
                 "iflist2_darwin", "ifmibdata_darwin", "rtnl_link_stats64", "proc_fdlist_darwin"):
        assert callable(getattr(sockdiag.decode, name)), name
