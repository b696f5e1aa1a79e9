"""The trace viewer in a real browser: Debian's Chromium, driven by Playwright.

The browser is never downloaded: ``scripts/test`` installs the ``chromium`` package. Without
it this test fails (set ``TFY_SKIP_BROWSER=1`` to skip it on purpose).

The screenshots go to a temporary directory; ``TFY_UPDATE_SCREENSHOTS=1`` writes them over the
ones in ``docs/img`` instead, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
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
from truefoundry_tracing import agent, tool, workflow
from truefoundry_tracing.cli._serve import LocalServer
from truefoundry_tracing.testing import FakeLLMServer

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
SCREENSHOTS = ("viewer-list.png", "viewer-trace.png")
# Read at import: the autouse fixture in tests/conftest.py removes TFY_* variables per test.
UPDATE_SCREENSHOTS = os.environ.get("TFY_UPDATE_SCREENSHOTS") == "1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUESTION = "Which plan includes SSO?"
ANSWER = "SSO is part of the Enterprise plan."
LIST_CLIP = {"x": 0, "y": 0, "width": 1440, "height": 220}


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
    def answer(question: str) -> str:
        return support(question)

    assert answer(QUESTION) == ANSWER


def test_viewer_list_waterfall_and_llm_chat(
    browser_page: Any,
    serve: LocalServer,
    llm: FakeLLMServer,
    openai_client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    screenshots: Path,
) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

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
    assert cells[3] == "5"  # workflow, agent, two LLM calls, tool
    assert int(cells[5]) > 0  # tokens
    failed = page.locator("tr.trace-row", has_text="nightly_invoices")
    assert failed.locator("td.errors").inner_text() == "1"
    page.screenshot(path=str(screenshots / "viewer-list.png"), clip=LIST_CLIP)
    assert png_size(screenshots / "viewer-list.png") == (LIST_CLIP["width"], LIST_CLIP["height"])

    top.click()
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

    # The first LLM span opens as a chat: messages by role, model and tokens.
    details = page.locator("#details")
    details.locator(".chat").wait_for()
    assert details.locator(".msg[data-role=system] .content").inner_text() == (
        "You answer billing questions."
    )
    assert details.locator(".msg[data-role=user] .content").inner_text() == QUESTION
    assert details.locator(".msg[data-role=assistant] .content").inner_text() == ANSWER
    facts = details.locator(".facts").inner_text()
    assert "gpt-4o-mini" in facts and "input tokens" in facts
    page.screenshot(path=str(screenshots / "viewer-trace.png"))
    assert png_size(screenshots / "viewer-trace.png") == (1440, 860)

    # The streamed call says so; a plain span shows its attributes.
    spans.nth(4).click()
    page.wait_for_function(
        "document.querySelector('#details .facts')?.innerText.includes('streaming')"
    )
    assert "yes" in details.locator(".facts").inner_text()
    spans.nth(3).click()
    details.locator(".span-attributes").wait_for()
    assert "traceloop.entity.name" in details.locator(".span-attributes").inner_text()
    assert details.locator(".chat").count() == 0

    page.goto(serve.url + "/#/")
    failed.click()
    page.locator(".span-row.error").click()
    page.wait_for_function(
        "document.querySelector('#details')?.innerText.includes('card declined')"
    )
    assert page.locator(".span-row.error .span-name").inner_text() == "charge_card"
    assert errors == []
