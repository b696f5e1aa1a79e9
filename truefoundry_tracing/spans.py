"""Inspecting finished spans: lookups, structure, the LLM view, snapshots and assertions.

Works on what the ``tfy_spans`` fixture and ``capture_spans()`` return, and on any list of
OpenTelemetry ``ReadableSpan`` objects or :class:`~truefoundry_tracing._model.SpanRecord`.
Failing assertions show the captured trace tree.

Example:
    >>> from truefoundry_tracing.spans import SpanList
    >>> from truefoundry_tracing._model import SpanRecord
    >>> spans = SpanList([
    ...     SpanRecord("wf.workflow", "t1", "a", attributes={"traceloop.span.kind": "workflow"}),
    ...     SpanRecord("step.task", "t1", "b", parent_id="a",
    ...                attributes={"traceloop.span.kind": "task"}),
    ... ])
    >>> spans.one(kind="task").name
    'step.task'
    >>> spans.assert_tree("workflow > task")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

from ._llm import LLMView, is_llm_span, llm_view
from ._model import SpanRecord, record_from_readable
from ._render import SpanTree, kind_of, render_tree

__all__ = ["LLMView", "SpanList", "SpanRecord", "as_records", "llm_view", "render_tree"]

_ANY = object()
_EMBEDDING = ("embedding", "embeddings")  # the operation of an embedding call, either line


def as_records(spans: Iterable[Any]) -> list[SpanRecord]:
    """Convert ReadableSpans (or SpanRecords, returned as they are) to SpanRecords.

    Example:
        >>> as_records([SpanRecord("x", "t", "1")])[0].name
        'x'
    """
    out: list[SpanRecord] = []
    for span in spans:
        out.append(span if isinstance(span, SpanRecord) else record_from_readable(span))
    return out


def _matches_step(span: SpanRecord, step: str) -> bool:
    step = step.strip()
    return step in (span.name, kind_of(span), span.attributes.get("traceloop.entity.name"))


class SpanList(Sequence[SpanRecord]):
    """An immutable list of finished spans with lookups, structure and assertions.

    Example:
        >>> spans = SpanList([SpanRecord("a.task", "t", "1",
        ...                              attributes={"traceloop.span.kind": "task"})])
        >>> spans.by_kind("task").names
        ['a.task']
    """

    def __init__(self, spans: Iterable[Any] = ()) -> None:
        self._fixed: list[SpanRecord] | None = as_records(spans)
        self._span_tree: SpanTree | None = None

    # -- the sequence ------------------------------------------------------------------
    def _items(self) -> list[SpanRecord]:
        return self._fixed if self._fixed is not None else []

    @overload
    def __getitem__(self, index: int) -> SpanRecord: ...
    @overload
    def __getitem__(self, index: slice) -> SpanList: ...
    def __getitem__(self, index: int | slice) -> SpanRecord | SpanList:
        items = self._items()
        if isinstance(index, slice):
            return SpanList(items[index])
        return items[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[SpanRecord]:
        return iter(self._items())

    def __repr__(self) -> str:
        return f"SpanList({[s.name for s in self._items()]!r})"

    @property
    def names(self) -> list[str]:
        """Span names, in the order the spans ended."""
        return [s.name for s in self._items()]

    # -- lookups -----------------------------------------------------------------------
    def where(self, predicate: Callable[[SpanRecord], bool]) -> SpanList:
        """Spans for which ``predicate(span)`` is true."""
        return SpanList([s for s in self._items() if predicate(s)])

    def by_name(self, name: str) -> SpanList:
        """Spans with this exact span name (``"joke.workflow"``, ``"openai.chat"``)."""
        return self.where(lambda s: s.name == name)

    def by_kind(self, kind: str) -> SpanList:
        """Spans of a kind: ``workflow``, ``task``, ``agent``, ``tool``, ``llm`` (or OTel's)."""
        return self.where(lambda s: kind_of(s) == kind)

    def by_entity(self, name: str) -> SpanList:
        """Spans of decorated functions with this entity name (``@task(name=...)``)."""
        return self.where(lambda s: s.attributes.get("traceloop.entity.name") == name)

    def by_attr(self, key: str, value: Any = _ANY) -> SpanList:
        """Spans that have attribute ``key`` (equal to ``value`` when given)."""
        if value is _ANY:
            return self.where(lambda s: key in s.attributes)
        return self.where(lambda s: s.attributes.get(key) == value)

    def filter(
        self,
        name: str | None = None,
        *,
        kind: str | None = None,
        entity: str | None = None,
        **attributes: Any,
    ) -> SpanList:
        """Spans matching every criterion given (attribute keys with dots: pass a dict via
        ``**{"gen_ai.request.model": "gpt-4o"}``)."""
        out = self
        if name is not None:
            out = out.by_name(name)
        if kind is not None:
            out = out.by_kind(kind)
        if entity is not None:
            out = out.by_entity(entity)
        for key, value in attributes.items():
            out = out.by_attr(key, value)
        return out

    def one(
        self,
        name: str | None = None,
        *,
        kind: str | None = None,
        entity: str | None = None,
        **attributes: Any,
    ) -> SpanRecord:
        """The single span matching the criteria; AssertionError listing what was there."""
        found = self.filter(name, kind=kind, entity=entity, **attributes)
        if len(found) != 1:
            wanted = ", ".join(
                f"{k}={v!r}"
                for k, v in {"name": name, "kind": kind, "entity": entity, **attributes}.items()
                if v is not None
            )
            raise AssertionError(
                f"expected exactly one span with {wanted or 'no criteria'}, found "
                f"{len(found)}{': ' + ', '.join(found.names) if len(found) else ''}.\n"
                f"Captured spans:\n{self._tree_or_none()}"
            )
        return found[0]

    # -- structure ---------------------------------------------------------------------
    def parent(self, span: SpanRecord) -> SpanRecord | None:
        """The span's parent, if it is in this list (None for a root, see :meth:`roots`)."""
        return self._tree().parent(span)

    def _tree(self) -> SpanTree:
        if self._span_tree is None:
            self._span_tree = SpanTree(self._items())
        return self._span_tree

    def children(self, span: SpanRecord) -> SpanList:
        """Direct children of ``span``, by start time."""
        return SpanList(self._tree().children(span))

    def descendants(self, span: SpanRecord) -> SpanList:
        """Every span below ``span``, depth first."""
        return SpanList(self._tree().descendants(span))

    def ancestors(self, span: SpanRecord) -> SpanList:
        """Parent, grandparent... up to the root."""
        out: list[SpanRecord] = []
        tree = self._tree()
        cur = tree.parent(span)
        while cur is not None:
            out.append(cur)
            cur = tree.parent(cur)
        return SpanList(out)

    def roots(self) -> SpanList:
        """Spans whose parent is not in this list, by start time.

        A span that names itself as its parent is a root too, and so is one span of each
        parent cycle, so every span is below exactly one root.
        """
        return SpanList(self._tree().roots)

    @property
    def root(self) -> SpanRecord:
        """The single root span; AssertionError when there are none or several."""
        roots = self.roots()
        if len(roots) != 1:
            raise AssertionError(
                f"expected one root span, found {len(roots)}: {roots.names}.\n"
                f"Captured spans:\n{self._tree_or_none()}"
            )
        return roots[0]

    def trace(self, span: SpanRecord) -> SpanList:
        """All spans of the trace ``span`` belongs to."""
        return self.where(lambda s: s.trace_id == span.trace_id)

    def traces(self) -> list[SpanList]:
        """One SpanList per trace, in the order the traces started."""
        groups: dict[str, list[SpanRecord]] = {}
        for s in sorted(self._items(), key=lambda s: s.start_ns):
            groups.setdefault(s.trace_id, []).append(s)
        return [SpanList(g) for g in groups.values()]

    def sorted(self) -> SpanList:
        """Spans by start time."""
        return SpanList(sorted(self._items(), key=lambda s: (s.start_ns, s.end_ns)))

    def tree(self, *, details: bool = True) -> str:
        """The spans as an indented text tree (the console default's renderer)."""
        return render_tree(self._items(), line=details)

    def _tree_or_none(self) -> str:
        return self.tree() if len(self) else "(no spans)"

    # -- LLM spans ---------------------------------------------------------------------
    def llm_spans(self) -> SpanList:
        """Spans of model calls (chat, completion, embedding...), by start time."""
        return self.where(lambda s: is_llm_span(s.attributes)).sorted()

    def llm(self, span: SpanRecord | None = None) -> LLMView:
        """The normalized LLM view of ``span``, or of the single LLM span when omitted."""
        if span is None:
            calls = self.llm_spans()
            if len(calls) != 1:
                raise AssertionError(
                    f"expected exactly one LLM span, found {len(calls)}.\n"
                    f"Captured spans:\n{self._tree_or_none()}"
                )
            span = calls[0]
        return llm_view(span.attributes)

    # -- snapshots ---------------------------------------------------------------------
    def as_dicts(
        self, *, normalize: bool = True, exclude: Iterable[str] = ("gen_ai.openai.api_base",)
    ) -> list[dict[str, Any]]:
        """Spans as plain dicts, in start order, for snapshot tests.

        With ``normalize`` (the default), ids become ``trace-1``/``span-1``... in order of
        appearance, times become positions in the sequence of starts and ends, and the
        resource is left out, so the same code gives the same dicts on every run.
        """
        items = sorted(self._items(), key=lambda s: (s.start_ns, s.end_ns))
        excluded = set(exclude)
        trace_ids: dict[str, str] = {}
        span_ids: dict[str, str] = {}
        ticks: dict[int, int] = {}
        if normalize:
            for s in items:
                trace_ids.setdefault(s.trace_id, f"trace-{len(trace_ids) + 1}")
                span_ids.setdefault(s.span_id, f"span-{len(span_ids) + 1}")
            for i, t in enumerate(sorted({s.start_ns for s in items} | {s.end_ns for s in items})):
                ticks[t] = i
        out: list[dict[str, Any]] = []
        for s in items:
            d: dict[str, Any] = {
                "name": s.name,
                "kind": kind_of(s),
                "trace_id": trace_ids.get(s.trace_id, s.trace_id) if normalize else s.trace_id,
                "span_id": span_ids.get(s.span_id, s.span_id) if normalize else s.span_id,
                "parent_id": (
                    span_ids.get(s.parent_id, s.parent_id)
                    if normalize and s.parent_id
                    else s.parent_id
                ),
                "start": ticks[s.start_ns] if normalize else s.start_ns,
                "end": ticks[s.end_ns] if normalize else s.end_ns,
                "status": s.status,
                "attributes": {k: v for k, v in sorted(s.attributes.items()) if k not in excluded},
                "events": [{"name": e.name, "attributes": dict(e.attributes)} for e in s.events],
            }
            if not normalize:
                d["resource"] = dict(s.resource)
            out.append(d)
        return out

    # -- assertions --------------------------------------------------------------------
    def assert_tree(self, *chains: str) -> None:
        """Assert each chain, like ``"workflow > task > llm"``, is a root-to-descendant path.

        Each step matches a span's name, kind or entity name; consecutive steps are parent
        and child. The first step must be a root.
        """
        tree = self._tree()
        for chain in chains:
            steps = [p.strip() for p in chain.split(">") if p.strip()]
            # Spans reached by the steps so far, one level at a time: no recursion, so a
            # chain thousands of spans deep is fine.
            reached = tree.roots
            for depth, step in enumerate(steps):
                if depth:
                    reached = [c for s in reached for c in tree.children(s)]
                reached = [s for s in reached if _matches_step(s, step)]
            if not steps or not reached:
                raise AssertionError(
                    f"no path {' > '.join(steps)!r} from a root in the captured spans:\n"
                    f"{self._tree_or_none()}"
                )

    def assert_absent(self, *values: str) -> None:
        """Assert no attribute, event, name or status message of any span contains a value.

        Use it with canary strings: an API key, or a prompt sent with ``trace_content=False``.
        The message names where a value was found but never prints the value itself.
        """
        for value in values:
            if not value:
                continue
            for s in self._items():
                where = _find(s, value)
                if where:
                    hidden = "[FORBIDDEN VALUE]"
                    message = (
                        f"a forbidden value (length {len(value)}) appears in span "
                        f"{s.name!r} at {where}.\nCaptured spans:\n{self._tree_or_none()}"
                    )
                    raise AssertionError(message.replace(value, hidden))

    def assert_stream_complete(self, span: SpanRecord | None = None) -> None:
        """Assert a streaming LLM span ended after its last chunk and recorded the output."""
        target = (
            span or self.llm_spans().where(lambda s: bool(llm_view(s.attributes).streaming)).one()
        )
        view = llm_view(target.attributes)
        problems: list[str] = []
        if not view.streaming:
            problems.append("it is not marked as streaming")
        chunk_times = [e.timestamp_ns for e in target.events if "chunk" in e.name]
        if chunk_times and max(chunk_times) > target.end_ns:
            problems.append("it ended before its last chunk was consumed")
        if not view.output_messages and not chunk_times:
            problems.append("it recorded neither output nor chunks")
        if problems:
            raise AssertionError(
                f"streaming span {target.name!r} is incomplete: {'; '.join(problems)}.\n"
                f"Captured spans:\n{self._tree_or_none()}"
            )

    def assert_one_llm_span_per_call(self, calls: int) -> None:
        """Assert ``calls`` model calls gave exactly ``calls`` LLM spans, all in one trace, none
        inside another LLM span, each with its model, output and token counts (an embedding
        call: its model; it has no answer, and some APIs count no tokens for it).

        The invariant a framework run should keep whatever records it (a provider SDK's own
        spans, a framework instrumentation above the provider's): compare ``calls`` with the
        requests your fake model server received.

        Example:
            >>> SpanList([]).assert_one_llm_span_per_call(0)
        """
        problems: list[str] = []
        found = self.llm_spans()
        if len(found) != calls:
            problems.append(f"{len(found)} LLM spans for {calls} model calls")
        if len(self.traces()) > 1:
            problems.append(f"the spans form {len(self.traces())} traces, not one")
        for span in found:
            view = llm_view(span.attributes)
            checks: tuple[tuple[str, Any], ...] = (("model", view.model),)
            if view.operation not in _EMBEDDING:
                checks += (
                    ("output", view.output_messages),
                    ("token counts", view.input_tokens is not None and view.output_tokens),
                )
            missing = [what for what, ok in checks if not ok]
            if missing:
                problems.append(f"{span.name!r} has no {', no '.join(missing)}")
            if any(is_llm_span(a.attributes) for a in self.ancestors(span)):
                problems.append(f"{span.name!r} is inside another LLM span")
        if problems:
            raise AssertionError(
                f"not one complete LLM span per model call: {'; '.join(problems)}.\n"
                f"Captured spans:\n{self._tree_or_none()}"
            )


def _contains(value: Any, needle: str) -> bool:
    if isinstance(value, str):
        return needle in value
    if isinstance(value, (list, tuple)):
        return any(_contains(v, needle) for v in value)
    if isinstance(value, dict):
        return any(_contains(k, needle) or _contains(v, needle) for k, v in value.items())
    return needle in str(value)


def _find(span: SpanRecord, needle: str) -> str | None:
    if needle in span.name:
        return "its name"
    if needle in span.status_message:
        return "its status message"
    for key, value in span.attributes.items():
        if _contains(key, needle) or _contains(value, needle):
            return f"attribute {key!r}"
    for event in span.events:
        if needle in event.name:
            return f"event {event.name!r}"
        for key, value in event.attributes.items():
            if _contains(value, needle):
                return f"event {event.name!r} attribute {key!r}"
    for key, value in span.resource.items():
        if _contains(value, needle):
            return f"resource attribute {key!r}"
    return None
