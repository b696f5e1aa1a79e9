"""Builds span trees and renders them as indented text: the console default, assertion
messages, ``show`` and the viewer's row order.

One builder (:class:`SpanTree`) and one renderer, so what ``init()`` prints locally, what a
failing test shows, what the CLI prints and what the viewer draws agree, including for input
no well-behaved tracer sends: chains thousands of spans deep, spans that name themselves as
their parent, and parent cycles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ._llm import is_llm_span, llm_view
from ._model import SpanRecord

__all__ = [
    "OWN_PARENT",
    "PARENT_CYCLE",
    "SpanTree",
    "TreeRow",
    "kind_of",
    "render_tree",
    "span_line",
]

TRACELOOP_KIND = "traceloop.span.kind"
OWN_PARENT = "own parent"
PARENT_CYCLE = "parent cycle"
# Deeper levels are not indented further: a line says its depth instead, so a chain of
# thousands of spans prints in lines of bounded width.
MAX_INDENT = 24


def kind_of(span: SpanRecord) -> str:
    """The span's kind as users think of it: workflow, task, agent, tool, llm, or OTel's kind.

    Example:
        >>> kind_of(SpanRecord("x", "1", "2", attributes={"traceloop.span.kind": "tool"}))
        'tool'
    """
    kind = span.attributes.get(TRACELOOP_KIND)
    if isinstance(kind, str) and kind:
        return kind
    if is_llm_span(span.attributes):
        return "llm"
    return span.kind.lower()


def _duration(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.2f} s"
    return f"{ms:.1f} ms"


def span_line(span: SpanRecord) -> str:
    """One line for a span: name, kind, duration, status and, for LLM spans, model and tokens."""
    parts = [span.name, f"[{kind_of(span)}]", _duration(span.duration_ms)]
    if span.status == "ERROR":
        parts.append("ERROR" + (f": {span.status_message}" if span.status_message else ""))
    if is_llm_span(span.attributes):
        view = llm_view(span.attributes)
        if view.model:
            parts.append(f"model={view.model}")
        if view.input_tokens is not None or view.output_tokens is not None:
            parts.append(
                f"tokens={view.input_tokens if view.input_tokens is not None else '?'}"
                f"->{view.output_tokens if view.output_tokens is not None else '?'}"
                + (f" ({view.total_tokens})" if view.total_tokens is not None else "")
            )
        if view.streaming:
            parts.append("stream")
    return "  ".join(parts)


def _order_key(span: SpanRecord) -> tuple[int, int]:
    return (span.start_ns, span.end_ns)


@dataclass(frozen=True)
class TreeRow:
    """One span in display order: its depth, whether it is its parent's last child, and a
    note saying why a span that names a parent among the spans is drawn as a root."""

    span: SpanRecord
    depth: int
    last: bool
    note: str = ""


class SpanTree:
    """Spans arranged as trees: the one builder behind the console, ``show``, assertion
    messages and the viewer.

    Parents are matched by (trace id, span id); children and roots are ordered by start time.
    A span whose parent is not among the spans is a root. Bad input from other clients never
    hides a span or recurses: a span naming itself as parent becomes a root noted
    ``"own parent"``, and each parent cycle is broken at one of its spans, which becomes a
    root noted ``"parent cycle"``. Every span appears exactly once; nothing recurses, so a
    chain of any depth is fine.

    Example:
        >>> a = SpanRecord("a", "t", "1", parent_id="2", start_ns=1)
        >>> b = SpanRecord("b", "t", "2", parent_id="1", start_ns=2)
        >>> [(r.span.name, r.depth, r.note) for r in SpanTree([b, a]).rows()]
        [('a', 0, 'parent cycle'), ('b', 1, '')]
    """

    def __init__(self, spans: Iterable[SpanRecord]) -> None:
        self.spans: list[SpanRecord] = list(spans)
        spans_ = self.spans
        keys = [_order_key(span) for span in spans_]
        order = sorted(range(len(spans_)), key=keys.__getitem__)
        self._index: dict[tuple[str, str], int] = {}
        for i, span in enumerate(spans_):
            self._index.setdefault((span.trace_id, span.span_id), i)
        self._parent: list[int | None] = [None] * len(spans_)
        parent = self._parent
        self._children: list[list[int]] = [[] for _ in spans_]
        self._notes: dict[int, str] = {}
        roots: list[int] = []
        for i in order:
            span = spans_[i]
            p = self._index.get((span.trace_id, span.parent_id)) if span.parent_id else None
            if p == i:
                self._notes[i] = OWN_PARENT
            if p is None or p == i:
                roots.append(i)
            else:
                parent[i] = p
                self._children[p].append(i)
        reached = [False] * len(spans_)
        self._mark(roots, reached)
        for i in order:
            if reached[i]:
                continue
            # Not reachable from a root: its ancestors loop. Climb to a span on the loop
            # and make that span a root.
            walked: set[int] = set()
            j: int | None = i
            while j is not None and j not in walked:
                walked.add(j)
                j = parent[j]
            above = None if j is None else parent[j]
            if j is None or above is None:  # cannot happen: every span off the roots loops
                continue
            self._children[above].remove(j)
            parent[j] = None
            self._notes[j] = PARENT_CYCLE
            roots.append(j)
            self._mark([j], reached)
        self._roots = sorted(roots, key=keys.__getitem__)

    def _mark(self, starts: list[int], reached: list[bool]) -> None:
        stack = list(starts)
        while stack:
            i = stack.pop()
            reached[i] = True
            stack.extend(self._children[i])

    def _find(self, span: SpanRecord) -> int | None:
        return self._index.get((span.trace_id, span.span_id))

    @property
    def roots(self) -> list[SpanRecord]:
        """The spans drawn at the top, by start time."""
        return [self.spans[i] for i in self._roots]

    def parent(self, span: SpanRecord) -> SpanRecord | None:
        """The span drawn directly above ``span`` (None for a root); for a span that is not
        among the spans, the one it names as its parent, if present."""
        i = self._find(span)
        if i is None:
            p = self._index.get((span.trace_id, span.parent_id)) if span.parent_id else None
        else:
            p = self._parent[i]
        return None if p is None else self.spans[p]

    def children(self, span: SpanRecord) -> list[SpanRecord]:
        """The spans drawn directly under ``span``, by start time."""
        i = self._find(span)
        return [] if i is None else [self.spans[c] for c in self._children[i]]

    def descendants(self, span: SpanRecord) -> list[SpanRecord]:
        """Every span drawn under ``span``, in display order."""
        i = self._find(span)
        return [] if i is None else [self.spans[r[0]] for r in self._walk([i])][1:]

    def _walk(self, starts: list[int]) -> Iterator[tuple[int, int, bool]]:
        """(index, depth, last child?) in display order, with an explicit stack."""
        children = self._children
        stack = [(i, 0, False) for i in reversed(starts)]
        if stack:
            stack[0] = (stack[0][0], 0, True)
        while stack:
            i, depth, last = stack.pop()
            yield i, depth, last
            kids = children[i]
            if kids:
                below = depth + 1
                stack.append((kids[-1], below, True))
                stack.extend((kid, below, False) for kid in reversed(kids[:-1]))

    def rows(self) -> Iterator[TreeRow]:
        """Every span once, parents before children, with depth, last-child flag and note."""
        for i, depth, last in self._walk(self._roots):
            yield TreeRow(self.spans[i], depth, last, self._notes.get(i, ""))


def render_tree(spans: Iterable[SpanRecord], *, line: bool = True) -> str:
    """Render spans as one indented tree per trace, roots first, children by start time.

    A span whose parent is not among ``spans`` is shown as a root, and so is a span that is
    its own parent or that breaks a parent cycle, followed by ``(own parent)`` or
    ``(parent cycle)``: every span is shown exactly once. Below 24 levels, lines say their
    depth instead of indenting further. With ``line=False`` only names and kinds are shown
    (stable text for snapshot tests).

    Example:
        >>> a = SpanRecord("wf.workflow", "t", "a", attributes={"traceloop.span.kind": "workflow"})
        >>> b = SpanRecord("step.task", "t", "b", parent_id="a",
        ...                attributes={"traceloop.span.kind": "task"})
        >>> print(render_tree([a, b], line=False))
        wf.workflow [workflow]
        └── step.task [task]
    """
    tree = SpanTree(spans)
    out: list[str] = []
    # bars[d]: what precedes the connector of a child of the open span at depth d.
    bars: list[str] = []
    for i, depth, last in tree._walk(tree._roots):
        span = tree.spans[i]
        text = span_line(span) if line else f"{span.name} [{kind_of(span)}]"
        note = tree._notes.get(i)
        if note:
            text += f"  ({note})"
        if not depth:
            out.append(text)
            bars[:] = [""]
            continue
        del bars[depth:]
        base = bars[-1]
        deeper = f"[depth {depth}] " if depth > MAX_INDENT + 1 else ""
        out.append(base + deeper + ("└── " if last else "├── ") + text)
        bars.append(base + ("    " if last else "│   ") if depth <= MAX_INDENT else base)
    return "\n".join(out)
