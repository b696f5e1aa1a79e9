"""SpanList: lookups, structure, tree, assertions, snapshots and the LLM view.

Every structural helper runs twice: on spans captured by the ``tfy_spans`` fixture, and on a
plain list of OpenTelemetry ``ReadableSpan`` objects from an ``InMemorySpanExporter`` on a
private ``TracerProvider`` (the library's pipeline is not involved). The LLM view is checked on
real ``openai`` calls (non-streaming and streaming) against the local ``FakeLLMServer``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

import truefoundry_tracing as tt
from truefoundry_tracing import task, tool, workflow
from truefoundry_tracing._model import SpanEvent
from truefoundry_tracing._pipeline import get_pipeline
from truefoundry_tracing.spans import LLMView, SpanList, SpanRecord, llm_view
from truefoundry_tracing.testing import CapturedSpans, FakeLLMServer, capture_spans

KIND = "traceloop.span.kind"
NAME = "traceloop.entity.name"

TREE = """\
wf.workflow [workflow]
├── a.task [task]
└── b.task [task]
    └── t.tool [tool]
other [internal]"""


# --------------------------------------------------------------------------------------------
# two sources of the same structure
# --------------------------------------------------------------------------------------------


def readable_spans() -> Sequence[ReadableSpan]:
    """wf > (a, b > t) and a separate root ``other``, with fixed times, on a private provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.private")
    t0 = 1_700_000_000_000_000_000

    def attrs(kind: str, name: str, **extra: Any) -> dict[str, Any]:
        return {KIND: kind, NAME: name, **extra}

    wf = tracer.start_span("wf.workflow", attributes=attrs("workflow", "wf"), start_time=t0)
    in_wf = trace.set_span_in_context(wf)
    a = tracer.start_span(
        "a.task", context=in_wf, attributes=attrs("task", "a", color="red"), start_time=t0 + 10
    )
    a.end(end_time=t0 + 20)
    b = tracer.start_span(
        "b.task", context=in_wf, attributes=attrs("task", "b", color="blue"), start_time=t0 + 30
    )
    t = tracer.start_span(
        "t.tool",
        context=trace.set_span_in_context(b),
        attributes=attrs("tool", "t", color="red"),
        start_time=t0 + 40,
    )
    t.end(end_time=t0 + 50)
    b.end(end_time=t0 + 60)
    wf.end(end_time=t0 + 70)
    other = tracer.start_span("other", start_time=t0 + 80)
    other.end(end_time=t0 + 90)
    provider.shutdown()
    return exporter.get_finished_spans()


def run_captured_structure() -> None:
    """The same structure from the library's decorators (plus a plain span afterwards)."""

    @task(name="a")
    def a() -> str:
        trace.get_current_span().set_attribute("color", "red")
        return "a"

    @tool(name="t")
    def t() -> str:
        trace.get_current_span().set_attribute("color", "red")
        return "t"

    @task(name="b")
    def b() -> str:
        trace.get_current_span().set_attribute("color", "blue")
        return t()

    @workflow(name="wf")
    def wf() -> str:
        return a() + b()

    assert wf() == "at"
    provider = get_pipeline().provider
    assert provider is not None
    with provider.get_tracer("tests.plain").start_as_current_span("other"):
        pass


@pytest.fixture(params=["captured", "readable"])
def spans(request: pytest.FixtureRequest) -> Iterator[SpanList]:
    if request.param == "readable":
        yield SpanList(readable_spans())
        return
    captured = request.getfixturevalue("tfy_spans")
    run_captured_structure()
    yield captured


# --------------------------------------------------------------------------------------------
# lookups
# --------------------------------------------------------------------------------------------


def test_len_iteration_and_names(spans: SpanList) -> None:
    assert len(spans) == 5
    assert sorted(spans.names) == ["a.task", "b.task", "other", "t.tool", "wf.workflow"]
    assert all(isinstance(s, SpanRecord) for s in spans)
    assert isinstance(spans[1:3], SpanList)
    assert len(spans[1:3]) == 2


def test_by_name_kind_entity_attr_and_filter(spans: SpanList) -> None:
    assert spans.by_name("a.task").names == ["a.task"]
    assert spans.by_name("a").names == []
    assert len(spans.by_name("nope")) == 0
    assert sorted(spans.by_kind("task").names) == ["a.task", "b.task"]
    assert spans.by_kind("workflow").names == ["wf.workflow"]
    assert spans.by_kind("tool").names == ["t.tool"]
    assert spans.by_kind("internal").names == ["other"]
    assert spans.by_entity("t").names == ["t.tool"]
    assert sorted(spans.by_attr("color").names) == ["a.task", "b.task", "t.tool"]
    assert sorted(spans.by_attr("color", "red").names) == ["a.task", "t.tool"]
    assert spans.by_attr("color", "green").names == []
    assert spans.filter(kind="task", color="red").names == ["a.task"]
    assert spans.filter("t.tool", entity="t", color="red").names == ["t.tool"]
    assert spans.filter(**{KIND: "tool"}).names == ["t.tool"]
    assert spans.where(lambda s: s.name.startswith("w")).names == ["wf.workflow"]


def test_one_returns_the_single_match(spans: SpanList) -> None:
    assert spans.one("b.task").attributes["color"] == "blue"
    assert spans.one(kind="tool").name == "t.tool"
    assert spans.one(entity="wf").name == "wf.workflow"
    assert spans.one(kind="task", color="red").name == "a.task"


def test_one_failure_lists_what_was_there_and_the_tree(spans: SpanList) -> None:
    with pytest.raises(AssertionError) as several:
        spans.one(kind="task")
    message = str(several.value)
    assert "expected exactly one span with kind='task', found 2" in message
    assert "a.task" in message
    assert "b.task" in message
    assert "Captured spans:" in message
    assert "└── t.tool  [tool]" in message  # the tree, with details

    with pytest.raises(AssertionError) as none:
        spans.one("missing.task", color="red")
    message = str(none.value)
    assert "name='missing.task', color='red', found 0" in message
    assert "wf.workflow" in message
    assert "other" in message

    with pytest.raises(AssertionError, match=r"found 0\.\nCaptured spans:\n\(no spans\)"):
        SpanList([]).one("x")


# --------------------------------------------------------------------------------------------
# structure
# --------------------------------------------------------------------------------------------


def test_parent_children_descendants_ancestors(spans: SpanList) -> None:
    wf = spans.one("wf.workflow")
    a = spans.one("a.task")
    b = spans.one("b.task")
    t = spans.one("t.tool")
    other = spans.one("other")
    assert spans.parent(wf) is None
    assert spans.parent(a) == wf
    assert spans.parent(t) == b
    assert spans.children(wf).names == ["a.task", "b.task"]  # by start time
    assert spans.children(t).names == []
    assert spans.descendants(wf).names == ["a.task", "b.task", "t.tool"]
    assert spans.descendants(b).names == ["t.tool"]
    assert spans.ancestors(t).names == ["b.task", "wf.workflow"]
    assert spans.ancestors(wf).names == []
    assert spans.ancestors(other).names == []
    assert t.parent_id == b.span_id
    assert len(wf.span_id) == 16
    assert len(wf.trace_id) == 32


def test_roots_root_trace_traces_sorted(spans: SpanList) -> None:
    assert spans.roots().names == ["wf.workflow", "other"]
    with pytest.raises(AssertionError, match="expected one root span, found 2"):
        _ = spans.root
    wf = spans.one("wf.workflow")
    t = spans.one("t.tool")
    assert sorted(spans.trace(t).names) == ["a.task", "b.task", "t.tool", "wf.workflow"]
    assert spans.trace(spans.one("other")).names == ["other"]
    traces = spans.traces()
    assert [tr.root.name for tr in traces] == ["wf.workflow", "other"]
    assert traces[0].root == wf
    assert all(s.trace_id == wf.trace_id for s in traces[0])
    assert spans.sorted().names == ["wf.workflow", "a.task", "b.task", "t.tool", "other"]
    starts = [s.start_ns for s in spans.sorted()]
    assert starts == sorted(starts)
    # A subtree of the list (the parent is missing) has its own root.
    sub = spans.where(lambda s: s.name in ("b.task", "t.tool"))
    assert sub.root.name == "b.task"


def test_tree_text_is_exact(spans: SpanList) -> None:
    assert spans.tree(details=False) == TREE
    detailed = spans.tree()
    lines = detailed.splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("wf.workflow  [workflow]  ")
    assert lines[3].startswith("    └── t.tool  [tool]  ")
    assert all(line.rstrip().endswith("ms") for line in lines)


def test_tree_shows_errors_and_llm_details() -> None:
    records = SpanList(
        [
            SpanRecord("wf.workflow", "t", "a", attributes={KIND: "workflow"}, end_ns=2_500_000),
            SpanRecord(
                "openai.chat",
                "t",
                "b",
                parent_id="a",
                status="ERROR",
                status_message="RateLimitError: slow down",
                attributes={
                    "llm.request.type": "chat",
                    "gen_ai.request.model": "gpt-x",
                    "gen_ai.usage.prompt_tokens": 3,
                    "gen_ai.usage.completion_tokens": 2,
                    "llm.is_streaming": True,
                },
            ),
        ]
    )
    assert records.tree().splitlines() == [
        "wf.workflow  [workflow]  2.5 ms",
        "└── openai.chat  [llm]  0.0 ms  ERROR: RateLimitError: slow down  model=gpt-x"
        "  tokens=3->2 (5)  stream",
    ]
    assert records.tree(details=False) == "wf.workflow [workflow]\n└── openai.chat [llm]"


# --------------------------------------------------------------------------------------------
# assertions
# --------------------------------------------------------------------------------------------


def test_assert_tree_passes(spans: SpanList) -> None:
    spans.assert_tree("workflow > task > tool")
    spans.assert_tree("wf.workflow > b.task > t.tool", "wf > a", "other")
    spans.assert_tree("workflow > a.task", "workflow")


@pytest.mark.parametrize(
    "chain",
    ["workflow > tool", "task > tool", "wf > a > t", "workflow > task > llm", ""],
)
def test_assert_tree_failure_message_contains_the_tree(spans: SpanList, chain: str) -> None:
    with pytest.raises(AssertionError) as excinfo:
        spans.assert_tree(chain)
    message = str(excinfo.value)
    assert message.startswith("no path ")
    assert "from a root in the captured spans:" in message
    assert "└── b.task  [task]" in message
    assert "    └── t.tool  [tool]" in message


CANARY = "canary-7d1e2f9a0b"


def _plain_span(tracer: trace.Tracer, where: str) -> None:
    attributes = {KIND: "task", NAME: "leaky"}
    if where == "attribute":
        attributes["note"] = f"before {CANARY} after"
    if where == "attribute_list":
        attributes["notes"] = ("fine", f"x{CANARY}x")  # type: ignore[assignment]
    if where == "attribute_key":
        attributes[f"key.{CANARY}"] = "value"
    if where == "llm_model":
        attributes.update({"llm.request.type": "chat", "gen_ai.request.model": CANARY})
    with tracer.start_as_current_span("leaky.task", attributes=attributes) as span:
        if where == "event":
            span.add_event("note", {"text": f"said {CANARY}"})
        if where == "event_name":
            span.add_event(f"note {CANARY}")
        if where == "status":
            span.set_status(Status(StatusCode.ERROR, f"failed with {CANARY}"))


WHERE = [
    "attribute",
    "attribute_list",
    "event",
    "status",
    "event_name",
    "attribute_key",
    "llm_model",
]


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("source", ["readable", "captured"])
def test_assert_absent_finds_the_canary_without_echoing_it(source: str, where: str) -> None:
    if source == "readable":
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        _plain_span(provider.get_tracer("tests.private"), where)
        found: SpanList = SpanList(exporter.get_finished_spans())
    else:
        with capture_spans() as captured:
            pipeline_provider = get_pipeline().provider
            assert pipeline_provider is not None
            _plain_span(pipeline_provider.get_tracer("tests.plain"), where)
            found = captured.snapshot()
    assert len(found) == 1
    found.assert_absent("something-else", "")
    with pytest.raises(AssertionError) as excinfo:
        found.assert_absent("something-else", CANARY)
    message = str(excinfo.value)
    assert "forbidden value" in message
    assert "leaky.task" in message
    assert CANARY not in message
    assert CANARY[3:-3] not in message


def test_assert_absent_passes_on_clean_spans(spans: SpanList) -> None:
    spans.assert_absent(CANARY, "secret-key-1234")


# --------------------------------------------------------------------------------------------
# as_dicts
# --------------------------------------------------------------------------------------------


def _app_run() -> list[dict[str, Any]]:
    with FakeLLMServer() as server, capture_spans() as captured:
        tt.init(app_name="snapshot", console=False)
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)

        @task(name="ask")
        def ask(q: str) -> str:
            reply = client.chat.completions.create(
                model="gpt-test", messages=[{"role": "user", "content": q}]
            )
            return reply.choices[0].message.content or ""

        @workflow(name="snap")
        def snap() -> str:
            return ask("one") + ask("two")

        snap()
        client.close()
        return captured.as_dicts()


def test_as_dicts_is_identical_across_two_runs() -> None:
    first = _app_run()
    second = _app_run()
    assert first == second
    names = ["snap.workflow", "ask.task", "openai.chat", "ask.task", "openai.chat"]
    assert [d["name"] for d in first] == names
    assert [d["span_id"] for d in first] == [f"span-{i}" for i in range(1, 6)]
    assert {d["trace_id"] for d in first} == {"trace-1"}
    assert [d["parent_id"] for d in first] == [None, "span-1", "span-2", "span-1", "span-4"]
    assert [d["kind"] for d in first] == ["workflow", "task", "llm", "task", "llm"]
    assert first[0]["start"] == 0
    assert all(d["end"] > d["start"] for d in first)
    assert "resource" not in first[0]
    assert "gen_ai.openai.api_base" not in first[2]["attributes"]
    json.dumps(first)  # plain data


def test_as_dicts_normalizes_random_ids_of_readable_spans() -> None:
    first, second = SpanList(readable_spans()), SpanList(readable_spans())
    assert first[0].trace_id != second[0].trace_id
    assert first.as_dicts() == second.as_dicts()
    raw = first.as_dicts(normalize=False)
    assert raw != second.as_dicts(normalize=False)
    assert raw[0]["trace_id"] == first.one("wf.workflow").trace_id
    assert "service.name" in raw[0]["resource"]
    assert first.as_dicts()[0] == {
        "name": "wf.workflow",
        "kind": "workflow",
        "trace_id": "trace-1",
        "span_id": "span-1",
        "parent_id": None,
        "start": 0,
        "end": 7,
        "status": "UNSET",
        "attributes": {KIND: "workflow", NAME: "wf"},
        "events": [],
    }


# --------------------------------------------------------------------------------------------
# the LLM view on real openai calls
# --------------------------------------------------------------------------------------------

MESSAGES: list[Any] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hello there"},
]


@pytest.fixture
def oai(tfy_llm_server: FakeLLMServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=tfy_llm_server.base_url, api_key="test-key", max_retries=0
    ) as client:
        yield client


def test_llm_view_of_a_real_non_streaming_call(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    tt.init(app_name="llm-view", console=False)
    reply = oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert reply.choices[0].message.content == "Echo: hello there"
    view = tfy_spans.llm()
    assert view == tfy_spans.llm(tfy_spans.one("openai.chat"))
    assert view.operation == "chat"
    assert view.model == "gpt-test"
    assert view.request_model == "gpt-test"
    assert view.response_model == "gpt-test"
    assert [(m.role, m.content) for m in view.input_messages] == [
        ("system", "Be brief."),
        ("user", "hello there"),
    ]
    assert [m.role for m in view.output_messages] == ["assistant"]
    assert view.output_text == "Echo: hello there"
    # FakeLLMServer counts one token per word: "Be brief." + "hello there"; the echo answer.
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (4, 3, 7)
    assert view.streaming is False
    assert view.finish_reasons == ("stop",)
    assert (view.system or "").lower() == "openai"
    assert view.as_dict()["output_messages"][0]["content"] == "Echo: hello there"
    assert tfy_spans.llm_spans().names == ["openai.chat"]


def test_llm_view_of_a_real_streaming_call_and_assert_stream_complete(
    tfy_spans: CapturedSpans, oai: openai.OpenAI
) -> None:
    tt.init(app_name="llm-view", console=False)
    # Like OpenAI, the fake streams token usage only when asked.
    stream = oai.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert len(tfy_spans) == 0  # the span stays open while the stream is read
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Echo: hello there"
    span = tfy_spans.one("openai.chat")
    view = tfy_spans.llm()
    assert view.streaming is True
    assert view.model == "gpt-test"
    assert [(m.role, m.content) for m in view.input_messages] == [
        ("system", "Be brief."),
        ("user", "hello there"),
    ]
    assert view.output_text == "Echo: hello there"
    assert view.finish_reasons == ("stop",)
    # On 0.38.12 the usage chunk reaches the span through _shims.openai_stream_usage.
    assert (view.input_tokens, view.output_tokens, view.total_tokens) == (4, 3, 7)
    assert any("chunk" in e.name for e in span.events)

    tfy_spans.assert_stream_complete()
    tfy_spans.assert_stream_complete(span)

    # A non-streaming call next to it: the explicit check on it fails, with the tree.
    oai.chat.completions.create(model="gpt-test", messages=MESSAGES)
    plain = tfy_spans.by_name("openai.chat").where(lambda s: s is not span and s != span)
    assert len(plain) == 1
    with pytest.raises(AssertionError) as excinfo:
        tfy_spans.assert_stream_complete(plain[0])
    message = str(excinfo.value)
    assert "is incomplete: it is not marked as streaming" in message
    assert "Captured spans:" in message
    assert message.count("openai.chat  [llm]") == 2
    tfy_spans.assert_stream_complete()  # still finds the single streaming span


def test_assert_stream_complete_failure_paths_on_records() -> None:
    early = SpanRecord(
        "openai.chat",
        "t",
        "s",
        start_ns=0,
        end_ns=100,
        attributes={"llm.request.type": "chat", "llm.is_streaming": True},
        events=(SpanEvent("llm.content.completion.chunk", 50), SpanEvent("x.chunk", 150)),
    )
    with pytest.raises(AssertionError, match="ended before its last chunk was consumed"):
        SpanList([early]).assert_stream_complete()
    empty = SpanRecord(
        "openai.chat",
        "t",
        "s",
        attributes={"gen_ai.operation.name": "chat", "gen_ai.is_streaming": True},
    )
    with pytest.raises(AssertionError, match="recorded neither output nor chunks"):
        SpanList([empty]).assert_stream_complete()
    with pytest.raises(AssertionError, match="found 0"):
        SpanList([]).assert_stream_complete()


REINIT_SCRIPT = r"""
import json, openai
import truefoundry_tracing as tt
from truefoundry_tracing.testing import FakeLLMServer, capture_spans

counts = []
with FakeLLMServer() as server:
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    for kwargs in ({}, {"instruments": []}, {}):
        tt.init(console=False, **kwargs)
        with capture_spans(isolate=False) as spans:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
            counts.append(len(spans.by_name("openai.chat")))
print(json.dumps(counts))
"""


def test_reinit_with_other_instruments_keeps_one_llm_span_per_call() -> None:
    # In a subprocess: the stacked wrappers would otherwise stay for the rest of this session.
    proc = subprocess.run(
        [sys.executable, "-c", REINIT_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # default: one span; instruments=[]: none, or one if openai is kept (with a warning);
    # default again: one.
    counts = json.loads(proc.stdout)
    assert counts[0] == 1
    assert counts[1] in (0, 1)
    assert counts[2] == 1


def test_llm_requires_exactly_one_llm_span(spans: SpanList) -> None:
    with pytest.raises(AssertionError, match="expected exactly one LLM span, found 0") as exc:
        spans.llm()
    assert "wf.workflow" in str(exc.value)


# --------------------------------------------------------------------------------------------
# llm_view on hand-built attributes of both generations
# --------------------------------------------------------------------------------------------

OLD_TEXT: dict[str, Any] = {
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "llm.is_streaming": False,
    "gen_ai.prompt.0.role": "system",
    "gen_ai.prompt.0.content": "Be brief.",
    "gen_ai.prompt.1.role": "user",
    "gen_ai.prompt.1.content": "What is 2+2?",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.content": "4",
    "gen_ai.completion.0.finish_reason": "stop",
    "gen_ai.usage.prompt_tokens": 9,
    "gen_ai.usage.completion_tokens": 1,
    "llm.usage.total_tokens": 10,
}

NEW_TEXT: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.is_streaming": False,
    "gen_ai.input.messages": json.dumps(
        [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content": "What is 2+2?"}]},
        ]
    ),
    "gen_ai.output.messages": json.dumps(
        [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "4"}],
                "finish_reason": "stop",
            }
        ]
    ),
    "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 9,
    "gen_ai.usage.output_tokens": 1,
    "gen_ai.usage.total_tokens": 10,
}


def test_llm_view_reads_both_generations_the_same() -> None:
    old, new = llm_view(OLD_TEXT), llm_view(NEW_TEXT)
    assert old == new
    assert old == LLMView(
        operation="chat",
        system="openai",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        input_messages=(
            tt_message("system", "Be brief."),
            tt_message("user", "What is 2+2?"),
        ),
        output_messages=(tt_message("assistant", "4", finish_reason="stop"),),
        input_tokens=9,
        output_tokens=1,
        total_tokens=10,
        streaming=False,
        finish_reasons=("stop",),
    )
    assert old.model == "gpt-4o-2024-08-06"
    assert old.output_text == "4"


def tt_message(role: str, content: str | None, **kw: Any) -> Any:
    from truefoundry_tracing._llm import LLMMessage

    return LLMMessage(role=role, content=content, **kw)


def test_llm_view_totals_and_missing_values() -> None:
    assert (
        llm_view({"gen_ai.usage.input_tokens": 2, "gen_ai.usage.output_tokens": 3}).total_tokens
        == 5
    )
    empty = llm_view({})
    assert empty == LLMView()
    assert empty.model is None
    assert empty.output_text == ""


OLD_TOOL: dict[str, Any] = {
    "llm.request.type": "chat",
    "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.prompt.0.role": "user",
    "gen_ai.prompt.0.content": "Weather in Paris?",
    "gen_ai.completion.0.role": "assistant",
    "gen_ai.completion.0.finish_reason": "tool_calls",
    "gen_ai.completion.0.tool_calls.0.id": "call_1",
    "gen_ai.completion.0.tool_calls.0.name": "get_weather",
    "gen_ai.completion.0.tool_calls.0.arguments": '{"city": "Paris"}',
    "gen_ai.usage.prompt_tokens": 5,
    "gen_ai.usage.completion_tokens": 7,
    "llm.usage.total_tokens": 12,
}


def new_tool(arguments: Any, finish: str) -> dict[str, Any]:
    """As traceloop 0.62's openai instrumentation writes a tool call (arguments as an object,
    finish reason ``tool_call``), with the two varying parts as parameters."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "call_1",
                            "name": "get_weather",
                            "arguments": arguments,
                        }
                    ],
                    "finish_reason": finish,
                }
            ]
        ),
        "gen_ai.response.finish_reasons": (finish,),
        "gen_ai.usage.input_tokens": 5,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.total_tokens": 12,
    }


def test_llm_view_reads_tool_calls_of_both_generations() -> None:
    old = llm_view(OLD_TOOL)
    new = llm_view(new_tool('{"city": "Paris"}', "tool_calls"))
    assert old == new
    (message,) = old.output_messages
    assert message.role == "assistant"
    assert message.content is None
    assert message.tool_calls == ({"name": "get_weather", "arguments": '{"city": "Paris"}'},)
    assert (old.input_tokens, old.output_tokens, old.total_tokens) == (5, 7, 12)


def test_llm_view_tool_call_arguments_read_the_same_as_each_line_writes_them() -> None:
    assert llm_view(OLD_TOOL) == llm_view(new_tool({"city": "Paris"}, "tool_calls"))


def test_llm_view_finish_reason_reads_the_same_as_each_line_writes_it() -> None:
    assert llm_view(OLD_TOOL) == llm_view(new_tool('{"city": "Paris"}', "tool_call"))
