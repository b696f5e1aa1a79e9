"""The one tree builder (``_render.SpanTree``) on input no well-behaved tracer sends.

``serve`` and ``show`` take spans from any client, so a chain thousands of spans deep, a span
that names itself as its parent and a parent cycle are real inputs. Each must render without
error, with every span shown exactly once, in the console tree (the exporter ``init()`` uses
when nothing is configured), the text tree of ``show`` and assertion messages, and the
viewer's row order.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from truefoundry_tracing._exporters import ConsoleTreeExporter
from truefoundry_tracing._render import MAX_INDENT, SpanTree, render_tree
from truefoundry_tracing.cli._web import trace_json
from truefoundry_tracing.spans import SpanList, SpanRecord

TRACE = "ab" * 16
DEEP = 5000


def sid(n: int) -> str:
    return format(n + 1, "016x")


def chain(depth: int) -> list[SpanRecord]:
    """s0 > s1 > ... > s{depth-1}, given deepest first (the order exporters see them end)."""
    return [
        SpanRecord(
            f"s{i}", TRACE, sid(i), parent_id=sid(i - 1) if i else None,
            start_ns=1_000 + i, end_ns=10_000_000 - i,
        )
        for i in reversed(range(depth))
    ]  # fmt: skip


def cycle_with_root() -> list[SpanRecord]:
    """A proper root ``r``, a self-parented ``me``, and a cycle a > b > c > a with a child d."""
    return [
        SpanRecord("r", TRACE, sid(0), start_ns=1, end_ns=100),
        SpanRecord("r.kid", TRACE, sid(1), parent_id=sid(0), start_ns=2, end_ns=3),
        SpanRecord("me", TRACE, sid(2), parent_id=sid(2), start_ns=4, end_ns=5),
        SpanRecord("a", TRACE, sid(3), parent_id=sid(5), start_ns=10, end_ns=50),
        SpanRecord("b", TRACE, sid(4), parent_id=sid(3), start_ns=11, end_ns=40),
        SpanRecord("c", TRACE, sid(5), parent_id=sid(4), start_ns=12, end_ns=30),
        SpanRecord("d", TRACE, sid(6), parent_id=sid(5), start_ns=13, end_ns=20),
    ]


# How cycle_with_root() is drawn: name, depth, note.
CYCLE_ROWS = [
    ("r", 0, ""),
    ("r.kid", 1, ""),
    ("me", 0, "own parent"),
    ("a", 0, "parent cycle"),
    ("b", 1, ""),
    ("c", 2, ""),
    ("d", 3, ""),
]


def names_in(text: str) -> list[str]:
    """The span name on each line of a ``line=False`` tree."""
    return [line.rsplit(" [", 1)[0].split(" ")[-1] for line in text.splitlines()]


# --------------------------------------------------------------------------------------------
# the builder
# --------------------------------------------------------------------------------------------


def test_a_deep_chain_is_one_path_with_every_span_once() -> None:
    rows = list(SpanTree(chain(DEEP)).rows())
    assert [(r.span.name, r.depth) for r in rows] == [(f"s{i}", i) for i in range(DEEP)]
    assert all(r.note == "" for r in rows)


def test_a_self_parent_and_a_cycle_become_marked_roots() -> None:
    tree = SpanTree(cycle_with_root())
    rows = [(r.span.name, r.depth, r.note) for r in tree.rows()]
    assert rows == CYCLE_ROWS
    assert [s.name for s in tree.roots] == ["r", "me", "a"]


def test_a_two_span_cycle_alone_in_its_trace_still_shows_both() -> None:
    spans = [
        SpanRecord("x", TRACE, sid(1), parent_id=sid(2), start_ns=5),
        SpanRecord("y", TRACE, sid(2), parent_id=sid(1), start_ns=6),
    ]
    assert render_tree(spans, line=False) == "x [internal]  (parent cycle)\n└── y [internal]"


def test_parents_are_matched_within_their_trace() -> None:
    spans = [
        SpanRecord("root", "t1", sid(1)),
        SpanRecord("elsewhere", "t2", sid(2), parent_id=sid(1)),
    ]
    assert [(r.span.name, r.depth) for r in SpanTree(spans).rows()] == [
        ("root", 0),
        ("elsewhere", 0),
    ]


def test_a_span_received_twice_is_shown_twice_not_dropped() -> None:
    span = SpanRecord("again", TRACE, sid(1))
    assert render_tree([span, span], line=False) == "again [internal]\nagain [internal]"


# --------------------------------------------------------------------------------------------
# the text tree (console, show, assertion messages)
# --------------------------------------------------------------------------------------------


def test_a_5000_deep_chain_renders_with_bounded_line_width() -> None:
    text = render_tree(chain(DEEP), line=False)
    lines = text.splitlines()
    assert names_in(text) == [f"s{i}" for i in range(DEEP)]
    assert max(len(line) for line in lines) < 4 * MAX_INDENT + 60
    assert lines[3] == "        └── s3 [internal]"
    assert lines[-1].endswith(f"[depth {DEEP - 1}] └── s{DEEP - 1} [internal]")


def test_a_cycle_renders_every_span_once_with_its_mark() -> None:
    text = render_tree(cycle_with_root())
    assert sorted(names_in(render_tree(cycle_with_root(), line=False))) == sorted(
        ["r", "r.kid", "me", "a", "b", "c", "d"]
    )
    lines = text.splitlines()
    assert lines[2].startswith("me  [internal]") and lines[2].endswith("(own parent)")
    assert lines[3].startswith("a  [internal]") and lines[3].endswith("(parent cycle)")
    assert lines[6].startswith("        └── d  [internal]")


class FixedIds(IdGenerator):
    """Span ids handed out in a fixed order, so a test can build parent links by hand."""

    def __init__(self, ids: Iterator[int]) -> None:
        self._ids = ids

    def generate_span_id(self) -> int:
        return next(self._ids)

    def generate_trace_id(self) -> int:
        return int(TRACE, 16)


def parent_ctx(span_id: int) -> trace.Context:
    ctx = SpanContext(int(TRACE, 16), span_id, is_remote=False, trace_flags=TraceFlags(1))
    return trace.set_span_in_context(NonRecordingSpan(ctx))


@pytest.mark.parametrize("shape", ["deep chain", "parent cycle"])
def test_the_console_exporter_prints_deep_chains_and_cycles(shape: str) -> None:
    out = io.StringIO()
    exporter = ConsoleTreeExporter(stream=lambda: out)
    provider = TracerProvider(id_generator=FixedIds(iter(range(1, 10 * DEEP))))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.render")
    if shape == "deep chain":
        opened = [tracer.start_span("s0")]
        for i in range(1, DEEP):
            opened.append(tracer.start_span(f"s{i}", context=trace.set_span_in_context(opened[-1])))
        for span in reversed(opened):
            span.end()
        expected = [f"s{i}" for i in range(DEEP)]
    else:
        # Ids 1, 2, 3 in order: a's parent is c, b's is a, c's is b. No root ever ends, so
        # the exporter prints the trace at shutdown.
        for name, parent in (("a", 3), ("b", 1), ("c", 2)):
            tracer.start_span(name, context=parent_ctx(parent)).end()
        expected = ["a", "b", "c"]
    provider.shutdown()
    lines = out.getvalue().splitlines()
    assert [line.split("  [internal]")[0].split(" ")[-1] for line in lines] == expected
    if shape == "parent cycle":
        assert lines[0].endswith("(parent cycle)")


# --------------------------------------------------------------------------------------------
# SpanList (tfy_spans, capture_spans): structure and assertion messages
# --------------------------------------------------------------------------------------------


def test_span_list_structure_on_a_5000_deep_chain() -> None:
    spans = SpanList(chain(DEEP))
    deepest = spans.one(f"s{DEEP - 1}")
    assert spans.root.name == "s0"
    assert len(spans.descendants(spans.root)) == DEEP - 1
    assert len(spans.ancestors(deepest)) == DEEP - 1
    spans.assert_tree(" > ".join(f"s{i}" for i in range(DEEP)))
    with pytest.raises(AssertionError) as failure:
        spans.assert_tree("s0 > s2")
    assert f"[depth {DEEP - 1}] └── s{DEEP - 1}" in str(failure.value)


def test_span_list_structure_with_a_cycle() -> None:
    spans = SpanList(cycle_with_root())
    assert spans.roots().names == ["r", "me", "a"]
    assert spans.parent(spans.one("me")) is None
    assert spans.ancestors(spans.one("d")).names == ["c", "b", "a"]
    assert spans.descendants(spans.one("a")).names == ["b", "c", "d"]
    spans.assert_tree("a > b > c > d", "me")
    with pytest.raises(AssertionError) as failure:
        spans.assert_tree("c > a")
    assert "a  [internal]  0.0 ms  (parent cycle)" in str(failure.value)


# --------------------------------------------------------------------------------------------
# the viewer's row order (its JSON API); the browser test draws these in Chromium
# --------------------------------------------------------------------------------------------


def test_viewer_rows_for_a_deep_chain_and_a_cycle() -> None:
    deep = trace_json(chain(DEEP))["spans"]
    assert [(s["name"], s["depth"]) for s in deep] == [(f"s{i}", i) for i in range(DEEP)]
    rows = trace_json(cycle_with_root())["spans"]
    assert [(s["name"], s["depth"], s["note"]) for s in rows] == CYCLE_ROWS


def test_parent_of_a_span_from_elsewhere_is_looked_up_by_its_parent_id() -> None:
    spans = SpanList(chain(3))
    outsider = SpanRecord("outsider", TRACE, sid(99), parent_id=sid(1))
    assert spans.parent(outsider) == spans.one("s1")
    assert spans.ancestors(outsider).names == ["s1", "s0"]
