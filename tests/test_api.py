"""The public API's contract: which names exist on which platform (psutil's habit)."""

from __future__ import annotations

import dataclasses
import importlib.machinery

import pytest

import sockdiag
from sockdiag._common import LINUX, MACOS

EVERYWHERE = {
    # errors
    "SockdiagError", "NoSuchProcess", "AccessDenied", "NotSupported", "UnsuitableSocket",
    # records
    "Record", "SendBuffer", "TcpInfo", "SocketInfo", "InterfaceCounters", "InterfaceRates",
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


def test_records_are_frozen_dataclasses_on_one_base():
    for name in sockdiag.__all__:
        value = getattr(sockdiag, name)
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            assert issubclass(value, sockdiag.Record), name
            assert value.__dataclass_params__.frozen, name
            assert "__slots__" in vars(value), name


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
