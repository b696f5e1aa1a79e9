"""Renders spans as an indented tree: the console default, assertion messages and ``show``.

One renderer, so what ``init()`` prints locally, what a failing test shows and what the CLI
prints look the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._llm import is_llm_span, llm_view
from ._model import SpanRecord

__all__ = ["kind_of", "render_tree", "span_line", "structure"]

TRACELOOP_KIND = "traceloop.span.kind"


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


def _children_map(
    spans: Sequence[SpanRecord],
) -> tuple[list[SpanRecord], dict[str, list[SpanRecord]]]:
    ids = {s.span_id for s in spans}
    roots: list[SpanRecord] = []
    children: dict[str, list[SpanRecord]] = {}
    for span in sorted(spans, key=lambda s: (s.start_ns, s.end_ns)):
        if span.parent_id and span.parent_id in ids:
            children.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    return roots, children


def render_tree(spans: Iterable[SpanRecord], *, line: bool = True) -> str:
    """Render spans as one indented tree per trace, roots first, children by start time.

    A span whose parent is not among ``spans`` is shown as a root. With ``line=False`` only
    names and kinds are shown (stable text for snapshot tests).

    Example:
        >>> a = SpanRecord("wf.workflow", "t", "a", attributes={"traceloop.span.kind": "workflow"})
        >>> b = SpanRecord("step.task", "t", "b", parent_id="a",
        ...                attributes={"traceloop.span.kind": "task"})
        >>> print(render_tree([a, b], line=False))
        wf.workflow [workflow]
        └── step.task [task]
    """
    spans = list(spans)
    roots, children = _children_map(spans)
    out: list[str] = []

    def text(span: SpanRecord) -> str:
        return span_line(span) if line else f"{span.name} [{kind_of(span)}]"

    def walk(span: SpanRecord, prefix: str, last: bool, top: bool) -> None:
        if top:
            out.append(text(span))
            child_prefix = ""
        else:
            out.append(prefix + ("└── " if last else "├── ") + text(span))
            child_prefix = prefix + ("    " if last else "│   ")
        kids = children.get(span.span_id, [])
        for i, kid in enumerate(kids):
            walk(kid, child_prefix, i == len(kids) - 1, False)

    for root in roots:
        walk(root, "", True, True)
    return "\n".join(out)


def structure(spans: Iterable[SpanRecord]) -> list[tuple[str, ...]]:
    """Each root-to-span path as a tuple of kinds-or-names, for shape assertions."""
    spans = list(spans)
    roots, children = _children_map(spans)
    paths: list[tuple[str, ...]] = []

    def walk(span: SpanRecord, path: tuple[str, ...]) -> None:
        here = (*path, span.name)
        paths.append(here)
        for kid in children.get(span.span_id, []):
            walk(kid, here)

    for root in roots:
        walk(root, ())
    return paths
