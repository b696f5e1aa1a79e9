"""The trace viewer in a real browser: Debian's Chromium, driven by Playwright.

The browser is never downloaded: ``scripts/test`` installs the ``chromium`` package. Without
it this test fails (set ``TFY_SKIP_BROWSER=1`` to skip it on purpose).

The screenshots go to a temporary directory; ``TFY_UPDATE_SCREENSHOTS=1`` writes them over the
ones in ``docs/img`` instead, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import truefoundry_tracing as tt
from truefoundry_tracing import agent, task, tool, workflow
from truefoundry_tracing.cli._serve import LocalServer
from truefoundry_tracing.testing import FakeLLMServer

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
SCREENSHOTS = ("viewer-list.png", "viewer-trace.png", "viewer-failure.png", "viewer-search.png")
# Read at import: the autouse fixture in tests/conftest.py removes TFY_* variables per test.
UPDATE_SCREENSHOTS = os.environ.get("TFY_UPDATE_SCREENSHOTS") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUESTION = "Which plan includes SSO?"
ANSWER = "SSO is part of the Enterprise plan."
LIST_CLIP = {"x": 0, "y": 0, "width": 1440, "height": 250}
SEARCH_CLIP = {"x": 0, "y": 0, "width": 1440, "height": 400}


def chromium_path() -> str:
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if path is None:
        if os.environ.get("TFY_SKIP_BROWSER") == "1":
            pytest.skip("TFY_SKIP_BROWSER=1: browser test skipped on purpose")
        pytest.fail(
            "the viewer test needs Debian's chromium package (/usr/bin/chromium), which "
            "scripts/test installs: apt-get install -y chromium. Set TFY_SKIP_BROWSER=1 to "
            "skip this test on purpose."
        )
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {
        name: (path.stat().st_mtime_ns, path.read_bytes())
        for name in SCREENSHOTS
        if (path := folder / name).exists()
    }


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Path]:
    """Where the test saves its screenshots; docs/img is left alone unless asked to update."""
    if UPDATE_SCREENSHOTS:
        IMAGES.mkdir(parents=True, exist_ok=True)
        yield IMAGES
        return
    before = _snapshot(IMAGES)
    folder = tmp_path / "img"
    folder.mkdir()
    yield folder
    assert _snapshot(IMAGES) == before, "the test wrote into docs/img without being asked to"


@pytest.fixture
def browser_page() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 860})
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()


def send_error_trace(url: str) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-worker"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url)))
    tracer = provider.get_tracer("billing")
    with (
        tracer.start_as_current_span("nightly_invoices"),
        tracer.start_as_current_span("charge_card") as span,
    ):
        span.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()


class PaymentDeclined(Exception):
    """What the failing task raises."""


def run_failing_workflow() -> None:
    @task(name="charge_card")
    def charge(order: dict[str, Any]) -> str:
        raise PaymentDeclined(f"card ending {order['card']} declined by the issuer")

    @workflow(name="refund_order")
    def refund(order_id: str) -> str:
        return charge({"id": order_id, "card": "4242", "amount": 12.5, "items": ["sso", "seats"]})

    with pytest.raises(PaymentDeclined):
        refund("ord-7")


def run_agent(client: openai.OpenAI, llm: FakeLLMServer) -> None:
    llm.reply(ANSWER)
    llm.reply("Enterprise")

    @tool(name="lookup_plan")
    def lookup_plan(feature: str) -> str:
        return "enterprise"

    @agent(name="support_agent")
    def support(question: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "You answer billing questions."},
                {"role": "user", "content": question},
            ],
        )
        lookup_plan("sso")
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "One word: which plan?"}],
            stream=True,
        )
        "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        return reply.choices[0].message.content or ""

    @workflow(name="answer_ticket")
    def answer(question: str, channel: str = "email") -> dict[str, Any]:
        return {"answer": support(question), "sources": ["pricing.md"], "escalate": False}

    with tt.association_properties(user_id="u-42", session_id="chat-7"):
        assert answer(QUESTION)["answer"] == ANSWER


# --------------------------------------------------------------------------------------------
# helpers: spans sent over the wire, and what the side panel shows
# --------------------------------------------------------------------------------------------


def wire_attrs(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, value in attrs.items():
        if isinstance(value, bool):
            out.append({"key": key, "value": {"boolValue": value}})
        elif isinstance(value, int):
            out.append({"key": key, "value": {"intValue": str(value)}})
        else:
            out.append({"key": key, "value": {"stringValue": str(value)}})
    return out


def wire_span(
    trace_id: str,
    n: int,
    name: str,
    *,
    parent: int | None = None,
    start_ns: int,
    duration_ns: int = 1_000_000,
    error: str = "",
    **attrs: Any,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": format(n, "016x"),
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + duration_ns),
        "attributes": wire_attrs(attrs),
    }
    if parent is not None:
        span["parentSpanId"] = format(parent, "016x")
    if error:
        span["status"] = {"code": 2, "message": error}
    return span


Send = Callable[[str, Mapping[str, Any]], None]


def post_otlp(send: Send, url: str, by_app: dict[str, list[dict[str, Any]]]) -> None:
    """Send spans to ``serve`` as OTLP/JSON, one resource (``service.name``) per app."""
    resources = [
        {
            "resource": {"attributes": wire_attrs({"service.name": app})},
            "scopeSpans": [{"spans": spans}],
        }
        for app, spans in by_app.items()
    ]
    send(url, {"resourceSpans": resources})


# Text nodes the page must never show: what a stray null, undefined or a node converted to
# text looks like. Attribute values are shown verbatim (JSON text may contain null), so
# those <pre> cells are left out of the word check.
STRAY_TEXT = """
(root) => {
  const bad = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const text = walker.currentNode.nodeValue.trim();
    if (["null", "undefined", "NaN"].includes(text) || text.includes("[object")) bad.push(text);
  }
  const copy = root.cloneNode(true);
  copy.querySelectorAll("table.attrs pre").forEach((n) => n.remove());
  for (const word of ["null", "undefined", "[object"]) {
    if (copy.textContent.includes(word)) bad.push("contains " + word);
  }
  return bad;
}
"""


def panel_text(page: Any) -> str:
    """The side panel's text, after checking it shows no stray null/undefined/[object …]."""
    details = page.locator("#details")
    assert details.evaluate(STRAY_TEXT) == []
    text: str = details.inner_text()
    return text


def open_span(page: Any, name: str, nth: int = 0) -> str:
    """Click the span row with this name; the side panel's text once it shows that span."""
    page.locator(".span-row", has=page.locator(f".span-name:text-is('{name}')")).nth(nth).click()
    page.locator("#details .detail-name", has_text=name).wait_for()
    return panel_text(page)


def headings(page: Any) -> list[str]:
    """The side panel's section headings, as written (the page shows them in capitals)."""
    return [str(h) for h in page.locator("#details h3").all_text_contents()]


def assert_labels_clear_of_bars(page: Any) -> None:
    """Every duration label sits to the right of its bar and of the lane."""
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.span-row')].slice(0, 200).map((row) => {
          const bar = row.querySelector('.bar').getBoundingClientRect();
          const lane = row.querySelector('.lane').getBoundingClientRect();
          const dur = row.querySelector('.dur').getBoundingClientRect();
          return [bar.right, lane.right, dur.left, dur.width];
        })"""
    )
    assert boxes
    for bar_right, lane_right, dur_left, dur_width in boxes:
        assert dur_width > 0
        assert bar_right <= lane_right + 0.5 <= dur_left + 0.5


def collect_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------


def test_viewer_list_waterfall_and_llm_chat(
    browser_page: Any,
    serve: LocalServer,
    llm: FakeLLMServer,
    openai_client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    screenshots: Path,
) -> None:
    page = browser_page
    errors = collect_errors(page)

    send_error_trace(serve.url + "/api/otel/v1/traces")
    monkeypatch.setenv("TFY_HOST", serve.url)
    monkeypatch.setenv("TFY_API_KEY", "tfy-local-key-for-the-viewer")
    monkeypatch.setenv("TFY_TRACING_PROJECT", "tenant:tracing-project:support")
    tt.init("support-bot", disable_batch=True, timeout=3)

    page.goto(serve.url + "/")
    rows = page.locator("tr.trace-row")
    rows.first.wait_for()
    assert rows.count() == 1

    # The page updates by itself as the app's spans arrive.
    run_agent(openai_client, llm)
    assert tt.flush(3)
    page.locator("tr.trace-row", has_text="answer_ticket.workflow").wait_for()
    assert rows.count() == 2
    top = rows.first
    cells = [c.strip() for c in top.locator("td").all_inner_texts()]
    assert cells[0].startswith("answer_ticket.workflow")
    assert cells[1] == "support-bot"
    assert "session_id chat-7" in cells[2] and "user_id u-42" in cells[2]
    assert cells[4] == "5"  # workflow, agent, two LLM calls, tool
    assert int(cells[6]) > 0  # tokens
    failed = page.locator("tr.trace-row", has_text="nightly_invoices")
    assert failed.locator("td.errors").inner_text() == "1"
    assert "charge_card: card declined" in failed.locator(".trace-error").inner_text()
    assert page.locator("#page-info").inner_text() == "1-2 of 2 traces"
    page.screenshot(path=str(screenshots / "viewer-list.png"), clip=LIST_CLIP)
    assert png_size(screenshots / "viewer-list.png") == (LIST_CLIP["width"], LIST_CLIP["height"])

    top.locator("td.name").click()
    spans = page.locator(".span-row")
    spans.nth(4).wait_for()
    names = [n.strip() for n in page.locator(".span-row .span-name").all_inner_texts()]
    assert names == [
        "answer_ticket.workflow",
        "support_agent.agent",
        "openai.chat",
        "lookup_plan.tool",
        "openai.chat",
    ]
    levels = [spans.nth(i).get_attribute("aria-level") for i in range(5)]
    assert levels == ["1", "2", "3", "3", "3"]
    # Waterfall: every bar is drawn, the root's spans the whole lane, children sit inside it.
    boxes = [spans.nth(i).locator(".bar").bounding_box() for i in range(5)]
    assert all(box is not None and box["width"] >= 1 for box in boxes)
    root_box = boxes[0]
    assert root_box is not None
    for box in boxes[1:]:
        assert box is not None
        assert root_box["x"] - 1 <= box["x"] <= root_box["x"] + root_box["width"]
    assert_labels_clear_of_bars(page)

    # The first LLM span opens as a chat: messages by role, model and tokens.
    details = page.locator("#details")
    details.locator(".chat").wait_for()
    assert details.locator(".msg[data-role=system] .content").inner_text() == (
        "You answer billing questions."
    )
    assert details.locator(".msg[data-role=user] .content").inner_text() == QUESTION
    assert details.locator(".msg[data-role=assistant] .content").inner_text() == ANSWER
    facts = details.locator(".chat .facts").inner_text()
    assert "gpt-4o-mini" in facts and "input tokens" in facts
    assert "user_id\nu-42" in panel_text(page)
    page.screenshot(path=str(screenshots / "viewer-trace.png"))
    assert png_size(screenshots / "viewer-trace.png") == (1440, 860)

    # The streamed call says so.
    spans.nth(4).click()
    page.wait_for_function(
        "document.querySelector('#details .chat .facts')?.innerText.includes('streaming')"
    )
    assert "yes" in details.locator(".chat .facts").inner_text()
    panel_text(page)

    # The workflow: its arguments and its returned dict as readable structures.
    text = open_span(page, "answer_ticket.workflow")
    assert "Session and properties" in headings(page) and "session_id\nchat-7" in text
    assert details.locator(".chat").count() == 0
    inputs = details.locator(".io-input").inner_text()
    assert QUESTION in inputs and "args" in inputs and "{" not in inputs
    outputs = details.locator(".io-output dl.obj").first.inner_text()
    assert outputs.split("\n") == [
        "answer",
        ANSWER,
        "sources",
        "pricing.md",
        "escalate",
        "false",
    ]

    # The tool: its input and output, its attributes.
    text = open_span(page, "lookup_plan.tool")
    assert "sso" in details.locator(".io-input").inner_text()
    assert details.locator(".io-output .str").inner_text() == "enterprise"
    assert "traceloop.entity.name" in details.locator(".span-attributes").inner_text()
    assert details.locator(".failure").count() == 0

    # A span that failed without recording an exception says so, with its status.
    page.goto(serve.url + "/#/")
    failed.click()
    page.locator("#details .detail-name", has_text="charge_card").wait_for()
    text = panel_text(page)
    assert headings(page)[0] == "Failed" and "card declined" in text
    assert "No exception was recorded on this span." in text
    assert page.locator(".span-row.error .span-name").inner_text() == "charge_card"
    assert errors == []


def test_viewer_failed_span_shows_exception_status_and_stack(
    browser_page: Any,
    serve: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    screenshots: Path,
) -> None:
    page = browser_page
    errors = collect_errors(page)
    monkeypatch.setenv("TFY_HOST", serve.url)
    tt.init("refunds", disable_batch=True, timeout=3)
    run_failing_workflow()
    assert tt.flush(3)

    page.goto(serve.url + "/")
    row = page.locator("tr.trace-row", has_text="refund_order.workflow")
    row.wait_for()
    assert row.locator("td.errors").inner_text() == "2"
    reason = "PaymentDeclined: card ending 4242 declined by the issuer"
    assert row.locator(".trace-error").inner_text() == f"charge_card.task: {reason}"
    row.click()

    # The trace opens on the span where it failed: exception type, message, stack, status.
    page.locator("#details .detail-name", has_text="charge_card.task").wait_for()
    text = panel_text(page)
    failure = page.locator("#details .failure")
    # OpenTelemetry records the class with its module (test_web.PaymentDeclined).
    assert failure.locator(".exc-type").inner_text().endswith(".PaymentDeclined")
    assert failure.locator(".exc-message").inner_text() == (
        "card ending 4242 declined by the issuer"
    )
    stack = failure.locator(".stack").inner_text()
    assert stack.startswith("Traceback (most recent call last):")
    assert "raise PaymentDeclined(" in stack and stack.rstrip().endswith(reason)
    assert "status ERROR" in text and page.locator("#details .status-error").inner_text() == "error"
    assert headings(page)[0] == "Failed"
    assert failure.locator(".status-message").inner_text() == reason
    events = page.locator("#details .events").inner_text()
    assert events.startswith("exception at ") and "PaymentDeclined" in events
    inputs = page.locator("#details .io-input").inner_text()
    assert "card\n4242" in inputs and "amount\n12.5" in inputs and "items\nsso\nseats" in inputs
    assert page.locator(".span-row.selected .span-name").inner_text() == "charge_card.task"
    page.screenshot(path=str(screenshots / "viewer-failure.png"))
    assert png_size(screenshots / "viewer-failure.png") == (1440, 860)

    # The workflow above it failed with the same exception.
    text = open_span(page, "refund_order.workflow")
    assert page.locator("#details .exc-type").inner_text().endswith(".PaymentDeclined")
    assert "ord-7" in page.locator("#details .io-input").inner_text()
    assert errors == []


def job_trace_id(n: int) -> str:
    return hashlib.sha256(f"job {n}".encode()).hexdigest()[:32]


def seed_many(send: Send, url: str, count: int) -> None:
    """``count`` traces from two apps; every 10th fails; users u-0..u-4; two are 3 days old."""
    now = time.time_ns()
    by_app: dict[str, list[dict[str, Any]]] = {"ingest": [], "billing": []}
    for n in range(count):
        trace_id = job_trace_id(n)
        start = now - (3 * 86_400 * 10**9 if n in (0, 1) else 0) - (count - n) * 10**6
        failing = n % 10 == 5
        user = {"traceloop.association.properties.user_id": f"u-{n % 5}"}
        by_app["billing" if n % 2 else "ingest"] += [
            wire_span(trace_id, 1, f"job_{n:03d}.workflow", start_ns=start, duration_ns=9 * 10**6,
                      **{"traceloop.span.kind": "workflow"}, **user),
            wire_span(trace_id, 2, "vector_search.task", parent=1, start_ns=start + 10**6,
                      error="VectorStoreTimeout: no answer from the vector store in 5 s"
                      if failing else "", **{"traceloop.span.kind": "task"}),
        ]  # fmt: skip
    post_otlp(send, url, by_app)


def test_viewer_search_filters_and_paging(
    browser_page: Any, serve: LocalServer, otlp_json: Send, screenshots: Path
) -> None:
    page = browser_page
    errors = collect_errors(page)
    seed_many(otlp_json, serve.url, 130)
    page.goto(serve.url + "/")
    rows = page.locator("tr.trace-row")

    def shown(expected_info: str) -> list[str]:
        page.wait_for_function(
            "(want) => document.querySelector('#page-info').innerText === want", arg=expected_info
        )
        return [n.split("\n")[0] for n in rows.locator("td.name > span").all_inner_texts()]

    # Paging: newest first, 50 a page, through every stored trace.
    assert shown("1-50 of 130 traces")[:2] == ["job_129.workflow", "job_128.workflow"]
    assert page.locator("#newer").is_disabled()
    page.locator("#older").click()
    assert shown("51-100 of 130 traces")[0] == "job_079.workflow"
    page.locator("#older").click()
    names = shown("101-130 of 130 traces")
    assert (len(names), names[-1]) == (30, "job_000.workflow")
    assert page.locator("#older").is_disabled()
    page.locator("#newer").click()
    shown("51-100 of 130 traces")
    page.goto(serve.url + "/#/?page=9")  # past the end: the last page
    shown("101-130 of 130 traces")

    # Search: span names, attributes and status messages of any span in the trace.
    page.locator("#f-q").fill("vector store")
    names = shown("1-13 of 13 traces")
    assert names[0] == "job_125.workflow" and all(int(n[4:7]) % 10 == 5 for n in names)
    assert rows.first.locator(".trace-error").inner_text() == (
        "vector_search.task: VectorStoreTimeout: no answer from the vector store in 5 s"
    )
    page.screenshot(path=str(screenshots / "viewer-search.png"), clip=SEARCH_CLIP)
    page.locator("#f-q").fill("job_07")
    assert shown("1-10 of 10 traces")[0] == "job_079.workflow"
    page.locator("#f-q").fill(job_trace_id(42)[:8])  # the start of a trace id
    assert shown("1-1 of 1 traces") == ["job_042.workflow"]
    page.locator("#f-q").fill("no such thing? a&b=c")
    shown("0-0 of 0 traces")
    assert page.locator("#no-match").is_visible() and not page.locator("#empty").is_visible()
    page.reload()  # the search is kept in the address, whatever characters it has
    shown("0-0 of 0 traces")
    assert page.locator("#f-q").input_value() == "no such thing? a&b=c"

    # Filters: status, app, attribute (a bare name is an association property), time.
    page.locator("#f-clear").click()
    shown("1-50 of 130 traces")
    page.locator("#f-status").select_option("error")
    shown("1-13 of 13 traces")
    page.locator("#f-app").select_option("billing")
    names = shown("1-13 of 13 traces")  # every failing job has an odd number
    page.locator("#f-status").select_option("ok")
    shown("1-50 of 52 traces")
    page.locator("#f-clear").click()
    page.locator("#f-attr").fill("user_id=u-3")
    names = shown("1-26 of 26 traces")
    assert all(int(n[4:7]) % 5 == 3 for n in names)
    # Clicking a user's chip filters by that user.
    page.locator("#f-clear").click()
    shown("1-50 of 130 traces")
    rows.first.locator(".chip", has_text="u-4").click()
    shown("1-26 of 26 traces")
    assert page.locator("#f-attr").input_value() == "user_id=u-4"
    page.locator("#f-clear").click()
    assert page.locator("#f-attr").input_value() == ""
    page.locator("#f-time").select_option("86400")
    shown("1-50 of 128 traces")
    # Filters live in the address, so reloading keeps them.
    page.reload()
    shown("1-50 of 128 traces")
    assert page.locator("#f-time").input_value() == "86400"
    assert errors == []


def test_viewer_large_deep_and_cyclic_traces(
    browser_page: Any, serve: LocalServer, otlp_json: Send
) -> None:
    page = browser_page
    errors = collect_errors(page)
    now = time.time_ns()
    big, deep, looped = "b1" * 16, "d1" * 16, "c1" * 16
    wide = [wire_span(big, 1, "batch.workflow", start_ns=now, duration_ns=10**9)]
    for step in range(111):  # 1 + 111 tasks + 888 calls = 1,000 spans
        task_id = 2 + step * 9
        wide.append(wire_span(big, task_id, f"step-{step}", parent=1, start_ns=now + step * 10**6))
        wide += [
            wire_span(big, task_id + k, f"call-{step}-{k}", parent=task_id, start_ns=now + k)
            for k in range(1, 9)
        ]
    chain = [
        wire_span(deep, n, f"s{n}", parent=n - 1 or None, start_ns=now + n, duration_ns=10**9 - n)
        for n in range(1, 5001)
    ]
    # s1 -> s3 -> s2 -> s1 and s4 (own parent): no root at all.
    links = ((1, 2), (2, 3), (3, 1), (4, 4))
    cycle = [wire_span(looped, n, f"loop-{n}", parent=p, start_ns=now + n) for n, p in links]
    post_otlp(otlp_json, serve.url, {"batch": wide, "deep": chain, "loops": cycle})

    # The list names each trace by its root; the rootless one by its first span.
    page.goto(serve.url + "/")
    page.locator("#page-info", has_text="1-3 of 3 traces").wait_for()
    listed = page.locator("tr.trace-row td.name > span").all_inner_texts()
    assert sorted(listed) == ["batch.workflow", "loop-1", "s1"]
    page.locator("tr.trace-row", has_text="batch.workflow").click()
    rows = page.locator(".span-row")
    page.locator("#trace-title", has_text="batch.workflow").wait_for()
    rows.nth(999).wait_for()
    assert rows.count() == 1000
    assert "1,000 spans" in page.locator("#trace-meta").inner_text()
    assert_labels_clear_of_bars(page)
    # Collapse the root, expand it again.
    rows.first.locator(".toggle").click()
    page.wait_for_function("document.querySelectorAll('.span-row').length === 1")
    rows.first.locator(".toggle").click()
    rows.nth(999).wait_for()
    # Find a span: matches are marked, Enter selects the next one.
    page.locator("#span-find").fill("call-57-")
    assert page.locator("#find-info").inner_text() == "8 of 1,000 spans match"
    assert page.locator(".span-row.found").count() == 8
    page.locator("#span-find").press("Enter")
    page.locator("#details .detail-name", has_text="call-57-1").wait_for()
    panel_text(page)

    page.goto(f"{serve.url}/#/trace/{deep}")
    page.locator("#trace-title", has_text="s1").wait_for()
    rows.nth(4999).wait_for()
    assert rows.count() == 5000
    last = rows.nth(4999)
    assert last.get_attribute("aria-level") == "5000"
    assert last.locator(".depth").inner_text() == "depth 4999"
    last.click()
    page.locator("#details .detail-name", has_text="s5000").wait_for()
    assert "parent 0000000000001387" in panel_text(page)
    # The deepest row's name is drawn inside its column, not indented out of sight.
    label = last.locator(".label").bounding_box()
    name = last.locator(".span-name").bounding_box()
    assert label is not None and name is not None
    assert label["x"] < name["x"] and name["x"] + name["width"] <= label["x"] + label["width"]

    page.goto(f"{serve.url}/#/trace/{looped}")
    page.locator("#trace-title", has_text="loop-1").wait_for()
    rows.nth(3).wait_for()
    assert rows.count() == 4
    assert page.locator(".span-row .span-name").all_inner_texts() == [
        "loop-1",
        "loop-3",
        "loop-2",
        "loop-4",
    ]
    assert page.locator(".span-row .note").all_inner_texts() == ["parent cycle", "own parent"]
    text = open_span(page, "loop-4")
    assert "Drawn as a root: this span names itself as its parent." in text
    assert errors == []


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_trace_list_api_pages_and_filters(serve: LocalServer, otlp_json: Send) -> None:
    seed_many(otlp_json, serve.url, 30)
    now = time.time_ns()
    extra = "f" * 32
    post_otlp(
        otlp_json,
        serve.url,
        {
            "billing": [
                wire_span(extra, 1, "promo.workflow", start_ns=now + 10**9, **{
                    "app.note": "50%_off", "app.retries": 3, "app.cached": True,
                })
            ]
        },
    )  # fmt: skip

    def traces(query: str) -> tuple[int, list[str]]:
        doc = get_json(f"{serve.url}/api/traces?{query}")
        return doc["total"], [t["root_name"] for t in doc["traces"]]

    total, names = traces("limit=10&offset=25")
    assert (total, names) == (31, [f"job_{n:03d}.workflow" for n in (5, 4, 3, 2, 1, 0)])
    assert traces("limit=2")[1] == ["promo.workflow", "job_029.workflow"]
    assert get_json(serve.url + "/api/traces")["apps"] == ["billing", "ingest"]
    assert traces("status=error")[0] == 3 and traces("status=ok")[0] == 28
    # % and _ are searched for literally.
    assert traces("q=50%25_off")[1] == ["promo.workflow"]
    assert traces("q=5_%25")[0] == 0
    # Attribute values compare as text, whatever their type.
    assert traces("attr=app.retries=3")[1] == ["promo.workflow"]
    assert traces("attr=app.cached=true")[1] == ["promo.workflow"]
    assert traces("attr=app.retries")[1] == ["promo.workflow"]
    assert traces("attr=app.retries=4")[0] == 0
    assert traces("attr=user_id=u-2")[0] == 6
    # Time bounds apply to the trace's start.
    assert traces(f"since={now + 1}")[1] == ["promo.workflow"]
    assert traces(f"until={now - 86_400 * 10**9}")[0] == 2
    assert traces("app=billing&status=error&name=vector")[0] == 3


def test_task_input_and_output_are_parsed_unless_too_deep() -> None:
    from truefoundry_tracing._model import SpanRecord
    from truefoundry_tracing.cli._web import trace_json

    deep = "[" * 5000 + "]" * 5000
    nested = "[" * 50 + "]" * 50
    span = SpanRecord(
        "t", "a" * 32, "b" * 16,
        attributes={"traceloop.entity.input": '{"args": [1], "kwargs": {}}',
                    "traceloop.entity.output": deep},
    )  # fmt: skip
    (row,) = trace_json([span])["spans"]
    assert row["io"] == {"input": {"args": [1], "kwargs": {}}, "output": deep}
    span = SpanRecord("t", "a" * 32, "b" * 16, attributes={"traceloop.entity.output": nested})
    assert trace_json([span])["spans"][0]["io"] == {"output": nested}
    assert trace_json([SpanRecord("t", "a" * 32, "b" * 16)])["spans"][0]["io"] == {}


def test_trace_api_names_a_rootless_trace_and_skips_unchanged_ones(
    serve: LocalServer, otlp_json: Send
) -> None:
    looped = "c2" * 16
    now = time.time_ns()
    links = ((1, 2), (2, 1))  # each names the other as its parent: no root at all
    post_otlp(
        otlp_json,
        serve.url,
        {
            "loops": [
                wire_span(looped, n, f"loop-{n}", parent=p, start_ns=now + n) for n, p in links
            ]
        },
    )
    (listed,) = get_json(serve.url + "/api/traces")["traces"]
    assert (listed["root_name"], listed["app"]) == ("loop-1", "loops")
    doc = get_json(f"{serve.url}/api/traces/{looped}")
    assert [(s["name"], s["note"]) for s in doc["spans"]] == [
        ("loop-1", "parent cycle"),
        ("loop-2", ""),
    ]
    # The page sends the version it has; an unchanged trace is not sent again.
    version = doc["version"]
    assert get_json(f"{serve.url}/api/traces/{looped}?known={version}") == {
        "version": version,
        "unchanged": True,
    }
    post_otlp(
        otlp_json, serve.url, {"loops": [wire_span(looped, 3, "late", parent=1, start_ns=now + 9)]}
    )
    doc = get_json(f"{serve.url}/api/traces/{looped}?known={version}")
    assert doc["version"] > version and [s["name"] for s in doc["spans"]][-1] == "late"
