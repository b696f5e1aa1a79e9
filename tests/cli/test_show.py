"""``truefoundry-tracing show``: what ``serve`` stored, as trees in the terminal."""

from __future__ import annotations

import io
import json
import urllib.request
from pathlib import Path

import pytest

from truefoundry_tracing.cli import main
from truefoundry_tracing.cli._serve import LocalServer


def post_json(url: str, trace_id: str, names: tuple[str, str], app: str = "show-app") -> None:
    root, child = names
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": app}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "00000000000000a1",
                                "name": root,
                                "startTimeUnixNano": "1000000000",
                                "endTimeUnixNano": "1900000000",
                                "attributes": [
                                    {
                                        "key": "traceloop.span.kind",
                                        "value": {"stringValue": "workflow"},
                                    }
                                ],
                            },
                            {
                                "traceId": trace_id,
                                "spanId": "00000000000000a2",
                                "parentSpanId": "00000000000000a1",
                                "name": child,
                                "startTimeUnixNano": "1100000000",
                                "endTimeUnixNano": "1500000000",
                                "attributes": [
                                    {"key": "llm.request.type", "value": {"stringValue": "chat"}},
                                    {
                                        "key": "gen_ai.request.model",
                                        "value": {"stringValue": "gpt-4o-mini"},
                                    },
                                    {
                                        "key": "gen_ai.prompt.0.role",
                                        "value": {"stringValue": "user"},
                                    },
                                    {
                                        "key": "gen_ai.prompt.0.content",
                                        "value": {"stringValue": "hi"},
                                    },
                                    {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": 3}},
                                    {
                                        "key": "gen_ai.usage.completion_tokens",
                                        "value": {"intValue": 4},
                                    },
                                ],
                            },
                        ]
                    }
                ],
            }
        ]
    }
    req = urllib.request.Request(
        url + "/api/otel/v1/traces",
        data=json.dumps(doc).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as response:
        assert response.status == 200


FIRST = "aaaa0000000000000000000000000001"
SECOND = "aaaa0000000000000000000000000002"
THIRD = "bbbb0000000000000000000000000003"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    with LocalServer(directory, port=0) as server:
        post_json(server.url, FIRST, ("first.workflow", "openai.chat"))
        post_json(server.url, SECOND, ("second.workflow", "openai.chat"))
        post_json(server.url, THIRD, ("third.workflow", "openai.chat"), app="other-app")
    return directory


def show(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["show", *args], out=out), out.getvalue()


def test_last_traces_as_trees_oldest_first(data: Path) -> None:
    code, text = show("--data", str(data))
    assert code == 0
    assert text.index("first.workflow") < text.index("second.workflow") < text.index("third")
    assert f"trace {THIRD}  app=other-app  spans=2\nthird.workflow  [workflow]  900.0 ms\n" in text
    assert "└── openai.chat  [llm]  400.0 ms  model=gpt-4o-mini  tokens=3->4 (7)" in text

    code, text = show("--data", str(data), "--last", "1")
    assert code == 0
    assert "third.workflow" in text and "first.workflow" not in text


def test_one_trace_by_id_or_prefix(data: Path) -> None:
    code, text = show("--data", str(data), "bbbb")
    assert (code, text.splitlines()[0]) == (0, f"trace {THIRD}  app=other-app  spans=2")
    code, text = show("--data", str(data), FIRST.upper())
    assert code == 0 and "first.workflow" in text and "second" not in text

    code, text = show("--data", str(data), "aaaa")
    assert code == 1
    assert "2 traces start with 'aaaa'" in text and FIRST in text and SECOND in text
    code, text = show("--data", str(data), "cccc")
    assert code == 1 and "no trace id starting with 'cccc'" in text
    code, text = show("--data", str(data), "not-hex")
    assert code == 1


def test_json_has_the_tree_and_the_llm_view(data: Path) -> None:
    code, text = show("--data", str(data), "--json", THIRD)
    assert code == 0
    (trace,) = json.loads(text)
    assert [(s["name"], s["depth"], s["kind"]) for s in trace["spans"]] == [
        ("third.workflow", 0, "workflow"),
        ("openai.chat", 1, "llm"),
    ]
    llm = trace["spans"][1]["llm"]
    assert (llm["model"], llm["total_tokens"]) == ("gpt-4o-mini", 7)
    assert llm["input_messages"] == [
        {"role": "user", "content": "hi", "tool_calls": [], "finish_reason": None}
    ]


def test_nothing_stored_says_how_to_get_traces(tmp_path: Path) -> None:
    code, text = show("--data", str(tmp_path / "missing"))
    assert code == 1
    assert "truefoundry-tracing serve" in text and "TFY_HOST=http://127.0.0.1:4318" in text
    with LocalServer(tmp_path / "empty", port=0):
        pass
    code, text = show("--data", str(tmp_path / "empty"))
    assert (code, "no traces stored" in text) == (1, True)


def test_default_directory_follows_tfy_tracing_data(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFY_TRACING_DATA", str(data))
    code, text = show("--last", "3")
    assert code == 0 and text.count("trace ") == 3


def test_show_reads_while_serve_is_writing(tmp_path: Path) -> None:
    with LocalServer(tmp_path, port=0) as server:
        post_json(server.url, FIRST, ("live.workflow", "openai.chat"))
        code, text = show("--data", str(tmp_path))
        assert code == 0 and "live.workflow" in text
        post_json(server.url, THIRD, ("later.workflow", "openai.chat"))
        assert "later.workflow" in show("--data", str(tmp_path))[1]
