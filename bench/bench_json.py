"""The JSON of `watch --json` on ~19,000 sockets: sockdiag's C writer against orjson and json.

The sockets of bench_process_sockets's fixture (9,500 loopback connections)
are read once; then each writer makes the text of the ``"sockets"`` array
that `watch --json` prints:
  * ``_fast.json_objects`` (the hand-written writer, reading the structs' slots);
  * orjson on dicts built in Python (orjson serializes dataclasses natively,
    but the structs have other fields than the JSON: the dicts must be built);
  * orjson on the prebuilt dicts (its serialization alone, a lower bound);
  * orjson on the structs themselves, each turned into its dict by orjson's
    ``default`` (every field, TcpInfo nested: another output);
  * json.dumps on dicts built in Python (the standard library).

Run: pytest bench/bench_json.py -s
"""

from __future__ import annotations

import json

import pytest

import sockdiag
from sockdiag._fast import json_objects
from sockdiag.fields import SOCKET_JSON_FIELDS

from bench_process_sockets import CONNECTIONS, holder

orjson = pytest.importorskip("orjson")

GROUP = f"watch --json's sockets array, {2 * CONNECTIONS + 1} sockets"


@pytest.fixture(scope="module")
def sockets():
    with holder(CONNECTIONS) as (pid, _):
        yield sockdiag.process_sockets(pid)


def as_dicts(structs) -> list[dict]:
    """The objects json_objects writes, as dicts (what orjson and json need)."""
    out = []
    for struct in structs:
        item = {}
        for key, attribute, sub_attribute in SOCKET_JSON_FIELDS:
            value = getattr(struct, attribute)
            if sub_attribute is not None and value is not None:
                value = getattr(value, sub_attribute)
            item[key] = value
        out.append(item)
    return out


def per_call(benchmark, function) -> float:
    benchmark.pedantic(function, rounds=15, warmup_rounds=2)
    return benchmark.stats.stats.median


def test_same_text(sockets):
    fast = json_objects(sockets, SOCKET_JSON_FIELDS)
    assert fast == orjson.dumps(as_dicts(sockets)).decode()
    assert fast == json.dumps(as_dicts(sockets), separators=(",", ":"), ensure_ascii=False)


@pytest.mark.benchmark(group="json")
def test_fast_json_objects(benchmark, sockets, ratios):
    ratios.add(GROUP, "_fast.json_objects (C, from the slots)",
               per_call(benchmark, lambda: json_objects(sockets, SOCKET_JSON_FIELDS)))


@pytest.mark.benchmark(group="json")
def test_orjson_with_dicts(benchmark, sockets, ratios):
    ratios.add(GROUP, "orjson.dumps(dicts built in Python)",
               per_call(benchmark, lambda: orjson.dumps(as_dicts(sockets))))


@pytest.mark.benchmark(group="json")
def test_orjson_prebuilt(benchmark, sockets, ratios):
    dicts = as_dicts(sockets)
    ratios.add(GROUP, "orjson.dumps(prebuilt dicts): serialization alone",
               per_call(benchmark, lambda: orjson.dumps(dicts)))


@pytest.mark.benchmark(group="json")
def test_orjson_structs(benchmark, sockets, ratios):
    # The structs are not dataclasses: orjson asks for each one's dict.
    ratios.add(GROUP, "orjson.dumps(structs, default=asdict): every field, another output",
               per_call(benchmark, lambda: orjson.dumps(sockets, default=lambda struct: struct.asdict())))


@pytest.mark.benchmark(group="json")
def test_json_dumps(benchmark, sockets, ratios):
    ratios.add(GROUP, "json.dumps(dicts built in Python)",
               per_call(benchmark, lambda: json.dumps(as_dicts(sockets), separators=(",", ":"),
                                                      ensure_ascii=False)))
