"""``to_json``: bounded, always-valid JSON renderings of decorated functions' inputs/outputs."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import math
import pathlib
import uuid
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from truefoundry_tracing._serialize import MAX_BYTES, MAX_ITEMS, MAX_STRING, to_json
from truefoundry_tracing.testing import OTLPReceiver


def _reject(constant: str) -> Any:
    raise ValueError(f"not strict JSON: {constant}")


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN / Infinity, which are not JSON."""
    return json.loads(text, parse_constant=_reject)


@dataclasses.dataclass
class Point:
    x: int
    y: str


class Model(pydantic.BaseModel):
    name: str
    tags: list[str]


class BadDump(pydantic.BaseModel):
    value: int

    def model_dump(self, **kwargs: Any) -> Any:  # type: ignore[override]
        raise RuntimeError("cannot dump")


class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class BadMapping(dict[str, Any]):
    def items(self) -> Any:  # type: ignore[override]
        raise RuntimeError("no items")

    def __iter__(self) -> Any:
        raise RuntimeError("no iteration")


def test_plain_values_are_ordinary_json() -> None:
    assert to_json({"q": "hi", "n": [1, 2.5, None, True]}) == (
        '{"q": "hi", "n": [1, 2.5, null, true]}'
    )
    assert to_json("héllo") == '"héllo"'
    assert to_json(None) == "null"


def test_known_non_json_types() -> None:
    assert strict_loads(to_json(b"\x00\x01")) == "<2 bytes>"
    assert strict_loads(to_json(bytearray(5))) == "<5 bytes>"
    assert strict_loads(to_json(Point(1, "a"))) == {"x": 1, "y": "a"}
    assert strict_loads(to_json(Model(name="n", tags=["t"]))) == {"name": "n", "tags": ["t"]}
    assert sorted(strict_loads(to_json({3, 1, 2}))) == [1, 2, 3]
    assert strict_loads(to_json((1, 2))) == [1, 2]
    assert strict_loads(to_json({1: "a", (2, 3): "b"})) == {"1": "a", "(2, 3)": "b"}
    assert "BadDump" in strict_loads(to_json(BadDump(value=1)))
    assert strict_loads(to_json(NoRepr())) == "<unrepresentable NoRepr>"
    assert "object" in strict_loads(to_json(object()))


def test_nan_and_infinity_become_strings() -> None:
    assert strict_loads(to_json([math.nan, math.inf, -math.inf, 1.5])) == [
        "nan",
        "inf",
        "-inf",
        1.5,
    ]


def test_recursion_and_depth_are_marked() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert to_json(loop) == '["<recursive list>"]'
    d: dict[str, Any] = {}
    d["me"] = d
    assert strict_loads(to_json(d)) == {"me": "<recursive dict>"}
    shared = [1]
    assert strict_loads(to_json([shared, shared])) == [[1], [1]]  # shared is not recursive
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    rendered = to_json(deep)
    assert "nested too deep" in rendered
    strict_loads(rendered)


def test_long_strings_and_collections_are_cut_with_markers() -> None:
    text = "x" * (MAX_STRING + 500)
    rendered = strict_loads(to_json(text))
    assert rendered.startswith("x" * MAX_STRING)
    assert rendered.endswith("…[truncated 500 chars]")

    # Collections are cut once the rendering is long (short ones take the fast path whole).
    assert strict_loads(to_json(list(range(MAX_ITEMS + 7)))) == list(range(MAX_ITEMS + 7))
    long_items = [f"{i:03d}" + "v" * 200 for i in range(MAX_ITEMS + 7)]
    items = strict_loads(to_json(long_items))
    assert items[:MAX_ITEMS] == long_items[:MAX_ITEMS]
    assert items[MAX_ITEMS:] == ["… 7 more items"]

    wide = strict_loads(to_json({f"k{i}": "v" * 200 for i in range(MAX_ITEMS + 3)}))
    assert len(wide) == MAX_ITEMS + 1
    assert wide["…"] == "3 more items"


def test_an_oversized_whole_becomes_a_truncated_preview() -> None:
    value = ["y" * 10_000 for _ in range(20)]  # each string fits, the whole does not
    text = to_json(value)
    assert len(text) <= MAX_BYTES
    rendered = strict_loads(text)
    assert rendered["truncated"] is True
    assert rendered["length"] > MAX_BYTES
    assert rendered["preview"].startswith('["yyy')


@pytest.mark.parametrize("limit", [19, 64, 200, 1000])
def test_a_smaller_limit_is_honoured(limit: int) -> None:
    for value in (["z" * 5000] * 3, {"a": "b" * 900}, "c" * 10_000):
        text = to_json(value, limit=limit)
        assert len(text) <= limit
        strict_loads(text)


def test_never_raises_on_hostile_objects() -> None:
    for value in (BadMapping(a=1), [BadMapping()], {"k": NoRepr()}, 10**5000):
        strict_loads(to_json(value))


# A JSON-ish value tree with the awkward leaves decorated functions really get.
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.binary(max_size=20),
    st.integers(min_value=0, max_value=3 * MAX_STRING).map(lambda n: "s" * n),
    st.builds(Point, st.integers(), st.text(max_size=10)),
    st.builds(NoRepr),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=12),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=8),
        st.frozensets(st.integers(), max_size=5),
    ),
    max_leaves=40,
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(_values)
def test_property_any_nested_value_gives_valid_bounded_json(value: Any) -> None:
    text = to_json(value)
    assert isinstance(text, str)
    assert len(text) <= MAX_BYTES
    strict_loads(text)


def test_lone_surrogates_give_utf8_encodable_json() -> None:
    text = to_json({"text": "broken \ud800 surrogate"})
    strict_loads(text)
    text.encode("utf-8")


def test_lone_surrogate_input_survives_export(tfy_otlp_receiver: OTLPReceiver) -> None:
    import truefoundry_tracing as tt
    from truefoundry_tracing.testing import capture_spans

    with capture_spans():  # undoes the init() below afterwards
        tt.init(
            app_name="surrogate",
            endpoint=tfy_otlp_receiver.url,
            disable_batch=True,
            console=False,
        )

        @tt.task(name="echo")
        def echo(text: str) -> str:
            return "ok"

        echo("broken \ud800 surrogate")
        assert tt.flush(timeout=5)
        (span,) = tfy_otlp_receiver.wait_for_spans(1)
    assert "traceloop.entity.input" in span.attributes


class Color(enum.Enum):
    RED = "red"


class WithToJson:
    def to_json(self) -> dict[str, Any]:
        return {"lc": 1, "kwargs": {"content": "Yes"}}


class V1Model:
    def dict(self) -> dict[str, Any]:
        return {"name": "Bob"}


class LegacyJson:
    def json(self) -> str:
        return '{"name": "Charlie"}'


class Plain:
    pass


class OwnRepr:
    def __repr__(self) -> str:
        return "OwnRepr(ok)"


def test_objects_render_as_traceloop_renders_them_never_with_an_address() -> None:
    assert strict_loads(to_json(WithToJson())) == {"lc": 1, "kwargs": {"content": "Yes"}}
    assert strict_loads(to_json(V1Model())) == {"name": "Bob"}
    assert strict_loads(to_json(LegacyJson())) == {"name": "Charlie"}
    assert strict_loads(to_json({"svc": Plain()})) == {"svc": "Plain"}
    assert strict_loads(to_json(OwnRepr())) == "OwnRepr(ok)"
    assert strict_loads(to_json(ValueError("boom"))) == "ValueError('boom')"
    assert strict_loads(to_json(lambda: 1)) == "function"
    assert strict_loads(to_json(Plain)) == "<class 'test_serialize.Plain'>"
    assert " at 0x" not in to_json([Plain(), object(), lambda: 1, Plain])


def test_enums_dates_ids_and_paths_are_readable() -> None:
    when = datetime.datetime(2026, 12, 6, 7, 30, tzinfo=datetime.UTC)
    value = {
        "color": Color.RED,
        "when": when,
        "day": when.date(),
        "id": uuid.UUID(int=1),
        "price": decimal.Decimal("1.50"),
        "path": pathlib.PurePosixPath("/tmp/x"),
        "tags": frozenset({"a"}),
    }
    assert strict_loads(to_json(value)) == {
        "color": "red",
        "when": "2026-12-06T07:30:00+00:00",
        "day": "2026-12-06",
        "id": "00000000-0000-0000-0000-000000000001",
        "price": "1.50",
        "path": "/tmp/x",
        "tags": ["a"],
    }
