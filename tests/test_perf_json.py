"""_fast.json_objects against json.dumps on arbitrary values and struct types.

The writer reads slots straight from memory and formats ints by hand; these
hold it to json.dumps byte for byte, whatever the structs are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, strategies as st

from sockdiag._fast import json_objects


@dataclass(frozen=True, slots=True)
class Inner:
    number: Any


@dataclass(frozen=True, slots=True)
class Slotted:
    a: Any
    b: Any
    inner: Any

    @property
    def computed(self) -> str:
        return f"{self.a!r}/{self.b!r}"


class Overridden(Slotted):
    """A subclass where a slot of the base is a property: getattr's answer wins."""

    __slots__ = ()

    def __init__(self, a, b, inner):  # the base's slots, set past the property
        for name, value in (("a", a), ("b", b), ("inner", inner)):
            Slotted.__dict__[name].__set__(self, value)

    @property  # type: ignore[misc]
    def a(self):
        return "from the property"


class Plain:
    """No slots at all: plain getattr."""

    def __init__(self, a, b, inner):
        self.a, self.b, self.inner = a, b, inner

    @property
    def computed(self) -> str:
        return "plain"


FIELDS = (("a", "a", None), ("b\n\"key", "b", None), ("computed", "computed", None),
          ("number", "inner", "number"))

json_values = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(1 << 64), max_value=1 << 64),
    st.sampled_from([0, -1, 1 << 63, (1 << 63) - 1, -(1 << 63), -(1 << 63) - 1, (1 << 64) - 1]),
    st.floats(allow_nan=False, allow_infinity=False), st.text())


def reference(structs) -> str:
    def one(struct):
        obj = {}
        for key, attribute, sub_attribute in FIELDS:
            value = getattr(struct, attribute)
            obj[key] = getattr(value, sub_attribute) if sub_attribute and value is not None else value
        return obj
    return json.dumps([one(r) for r in structs], separators=(",", ":"), ensure_ascii=False)


@given(st.lists(st.tuples(st.sampled_from([Slotted, Overridden, Plain]), json_values, json_values,
                          st.one_of(st.none(), json_values.map(Inner))), max_size=8))
def test_json_objects_equals_json_dumps(rows):
    structs = [cls(a, b, inner) for cls, a, b, inner in rows]
    assert json_objects(structs, FIELDS) == reference(structs)


def test_an_empty_slot_is_an_attribute_error():
    struct = Slotted.__new__(Slotted)  # no __init__: every slot empty
    with pytest.raises(AttributeError):
        json_objects([struct], FIELDS)


def test_values_without_json_form():
    for value, error in ((float("inf"), ValueError), (float("nan"), ValueError), ([], TypeError)):
        with pytest.raises(error):
            json_objects([Slotted(value, 0, None)], FIELDS)
