"""``truefoundry-tracing serve``: real exporters in, SQLite store, restarts, bad input."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode

import truefoundry_tracing as tt
from truefoundry_tracing import task, workflow
from truefoundry_tracing.cli._serve import LocalServer
from truefoundry_tracing.cli._store import Store
from truefoundry_tracing.testing import FakeLLMServer

KEY = "tfy-serve-secret-key-0042"
PROTOBUF = "application/x-protobuf"
TRACE_HEX = "5b8efff798038103d269b633813fc60c"


def request(
    url: str,
    body: bytes | None = None,
    content_type: str | None = PROTOBUF,
    headers: dict[str, str] | None = None,
    method: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    all_headers = dict(headers or {})
    if content_type is not None and body is not None:
        all_headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def get_json(url: str) -> Any:
    status, _, body = request(url)
    assert status == 200, body
    return json.loads(body)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def export_with_sdk(url: str, app: str = "sdk-app", *, fail_child: bool = False) -> str:
    """Send a two-span trace with OpenTelemetry's own OTLP/HTTP protobuf exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": app}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("checkout", attributes={"order.id": 7}) as root:
        with tracer.start_as_current_span("charge") as child:
            if fail_child:
                child.set_status(Status(StatusCode.ERROR, "card declined"))
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def otlp_json(trace_id: str = TRACE_HEX, app: str = "json-app") -> bytes:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": app}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "manual"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json-root",
                                "kind": 1,
                                "startTimeUnixNano": "1700000000000000000",
                                "endTimeUnixNano": "1700000000250000000",
                                "attributes": [
                                    {
                                        "key": "traceloop.span.kind",
                                        "value": {"stringValue": "workflow"},
                                    }
                                ],
                            },
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b173",
                                "parentSpanId": "eee19b7ec3c1b174",
                                "name": "json-child",
                                "startTimeUnixNano": "1700000000100000000",
                                "endTimeUnixNano": "1700000000200000000",
                                "status": {"code": 2, "message": "boom"},
                            },
                        ],
                    }
                ],
            }
        ]
    }
    return json.dumps(doc).encode()


def assert_still_serving(server: LocalServer) -> None:
    status, _, _ = request(server.url + "/api/otel/v1/traces", otlp_json(), "application/json")
    assert status == 200
    assert get_json(server.url + "/api/traces")["traces"]


# -- spans in -------------------------------------------------------------------------------


def test_sdk_protobuf_export_is_stored_and_printed(
    serve: LocalServer, serve_out: io.StringIO
) -> None:
    trace_id = export_with_sdk(serve.url + "/api/otel/v1/traces", fail_child=True)
    (summary,) = get_json(serve.url + "/api/traces")["traces"]
    assert summary["trace_id"] == trace_id
    assert (summary["root_name"], summary["app"]) == ("checkout", "sdk-app")
    assert (summary["span_count"], summary["errors"], summary["tokens"]) == (2, 1, 0)
    doc = get_json(f"{serve.url}/api/traces/{trace_id}")
    assert [(s["name"], s["depth"]) for s in doc["spans"]] == [("checkout", 0), ("charge", 1)]
    assert doc["spans"][0]["attributes"] == {"order.id": 7}
    assert doc["spans"][1]["status_message"] == "card declined"
    wait_until(lambda: "└── charge" in serve_out.getvalue())
    assert f"trace {trace_id}  app=sdk-app  spans=2\ncheckout  [internal]" in serve_out.getvalue()


def test_otlp_json_at_the_truefoundry_path(serve: LocalServer) -> None:
    status, _, body = request(serve.url + "/api/otel/v1/traces", otlp_json(), "application/json")
    assert (status, body) == (200, b"{}")
    (span_root, span_child) = Store(serve.store.directory).spans(TRACE_HEX)
    assert (span_root.name, span_child.name) == ("json-root", "json-child")
    assert span_child.parent_id == span_root.span_id
    assert span_child.status == "ERROR"
    (summary,) = get_json(serve.url + "/api/traces")["traces"]
    assert summary["duration_ms"] == pytest.approx(250.0)


def test_retried_batch_is_not_duplicated(serve: LocalServer) -> None:
    for _ in range(3):
        assert request(serve.url + "/api/otel/v1/traces", otlp_json(), "application/json")[0] == 200
    (summary,) = get_json(serve.url + "/api/traces")["traces"]
    assert summary["span_count"] == 2


def make_app(client: openai.OpenAI) -> Callable[[str], str]:
    @task(name="ask")
    def ask(question: str) -> str:
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": question},
            ],
        )
        return reply.choices[0].message.content or ""

    @workflow(name="support")
    def answer(question: str) -> str:
        return ask(question)

    return answer


def test_init_pointed_at_serve_with_tfy_host(
    serve: LocalServer,
    llm: FakeLLMServer,
    openai_client: openai.OpenAI,
    monkeypatch: pytest.MonkeyPatch,
    serve_out: io.StringIO,
) -> None:
    monkeypatch.setenv("TFY_HOST", serve.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    monkeypatch.setenv("TFY_TRACING_PROJECT", "tenant:tracing-project:local")
    status = tt.init("serve-app", disable_batch=True, timeout=3)
    assert status.traces_url == serve.url + "/api/otel/v1/traces"
    llm.reply("Press 'forgot password'.")
    assert make_app(openai_client)("How do I reset my password?") == "Press 'forgot password'."
    assert tt.flush(3)

    wait_until(lambda: len(serve.store.traces()) == 1 and serve.store.traces()[0].span_count == 3)
    (summary,) = get_json(serve.url + "/api/traces")["traces"]
    assert (summary["root_name"], summary["app"]) == ("support.workflow", "serve-app")
    assert summary["tokens"] > 0
    doc = get_json(f"{serve.url}/api/traces/{summary['trace_id'][:12]}")
    kinds = [(s["name"], s["kind"], s["depth"]) for s in doc["spans"]]
    assert kinds == [
        ("support.workflow", "workflow", 0),
        ("ask.task", "task", 1),
        ("openai.chat", "llm", 2),
    ]
    chat = doc["spans"][2]["llm"]
    assert chat["model"] == "gpt-4o-mini"
    assert [(m["role"], m["content"]) for m in chat["input_messages"]] == [
        ("system", "Answer briefly."),
        ("user", "How do I reset my password?"),
    ]
    assert chat["output_messages"][0]["content"] == "Press 'forgot password'."
    assert chat["input_tokens"] and chat["output_tokens"]
    # Nothing was reported missing, and the key is in no output.
    assert get_json(serve.url + "/api/status")["missing_authorization"] == 0
    wait_until(lambda: "openai.chat  [llm]" in serve_out.getvalue())
    assert "!" not in serve_out.getvalue()
    assert KEY.encode() not in serve.store.path.read_bytes()


def test_spans_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LocalServer(data, port=0) as first:
        first_id = export_with_sdk(first.url + "/api/otel/v1/traces", app="before")
        request(first.url + "/api/otel/v1/traces", otlp_json(), "application/json")
    with LocalServer(data, port=0) as second:
        listed = {t["trace_id"]: t for t in get_json(second.url + "/api/traces")["traces"]}
        assert set(listed) == {first_id, TRACE_HEX}
        assert listed[first_id]["span_count"] == 2
        doc = get_json(f"{second.url}/api/traces/{first_id}")
        assert [s["name"] for s in doc["spans"]] == ["checkout", "charge"]
        third_id = export_with_sdk(second.url + "/api/otel/v1/traces", app="after")
        traces = get_json(second.url + "/api/traces")["traces"]
        assert traces[0]["trace_id"] == third_id
        assert len(traces) == 3


# -- what TrueFoundry would say about the headers --------------------------------------------


def test_missing_headers_are_reported_once_and_counted(
    serve: LocalServer, serve_out: io.StringIO
) -> None:
    for _ in range(2):
        assert request(serve.url + "/api/otel/v1/traces", otlp_json(), "application/json")[0] == 200
    text = serve_out.getvalue()
    assert text.count("without an Authorization header; TrueFoundry would answer 401") == 1
    assert text.count("without a TFY-Tracing-Project header") == 1
    status = get_json(serve.url + "/api/status")
    assert (status["missing_authorization"], status["missing_project"]) == (2, 2)
    request(
        serve.url + "/api/otel/v1/traces",
        otlp_json(),
        "application/json",
        {"Authorization": "Token abc", "TFY-Tracing-Project": "a:b"},
    )
    assert "is not 'Bearer <key>'" in serve_out.getvalue()


def test_require_key_answers_401_like_truefoundry(tmp_path: Path) -> None:
    out = io.StringIO()
    with LocalServer(tmp_path, port=0, require_key=KEY, out=out) as server:
        url = server.url + "/api/otel/v1/traces"
        body = otlp_json()
        missing = request(url, body, "application/json")
        wrong = request(url, body, "application/json", {"Authorization": "Bearer nope"})
        right = request(url, body, "application/json", {"Authorization": f"Bearer {KEY}"})
        assert (missing[0], wrong[0], right[0]) == (401, 401, 200)
        assert b"send Authorization: Bearer <key>" in missing[2]
        assert KEY.encode() not in missing[2] + wrong[2]
        assert get_json(server.url + "/api/status")["rejected"] == 2
        assert len(server.store.traces()) == 1
    assert "rejected a trace export with 401" in out.getvalue()
    assert KEY not in out.getvalue()


def test_sdk_exporter_with_headers_against_require_key(tmp_path: Path) -> None:
    with LocalServer(tmp_path, port=0, require_key=KEY) as server:
        provider = TracerProvider()
        exporter = OTLPSpanExporter(
            endpoint=server.url + "/api/otel/v1/traces", headers={"Authorization": f"Bearer {KEY}"}
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        with provider.get_tracer("t").start_as_current_span("authorized"):
            pass
        provider.shutdown()
        assert [t.root_name for t in server.store.traces()] == ["authorized"]


# -- the path TrueFoundry answers at ----------------------------------------------------------


def test_export_to_another_path_gets_404_naming_the_setting_then_the_advice_works(
    serve: LocalServer, serve_out: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an OpenTelemetry exporter does with OTEL_EXPORTER_OTLP_ENDPOINT=<serve's URL>: it
    # appends /v1/traces, where TrueFoundry does not answer. serve must not accept it either.
    for _ in range(2):
        status, _, body = request(serve.url + "/v1/traces", otlp_json(), "application/json")
        assert status == 404
    advice = body.decode()
    assert f"TFY_HOST={serve.url} (truefoundry_tracing)" in advice
    assert f"TRACELOOP_BASE_URL={serve.url}/api/otel (traceloop)" in advice
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT={serve.url}/api/otel" in advice
    assert serve.store.version() == 0
    lines = [line for line in serve_out.getvalue().splitlines() if "/v1/traces" in line]
    assert len(lines) == 1 and lines[0].startswith("! a trace export was POSTed to /v1/traces")
    assert get_json(serve.url + "/api/status")["wrong_path"] == 2

    # Each piece of advice, applied, delivers.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", serve.url + "/api/otel")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
    provider.get_tracer("t").start_span("via-otel-endpoint").end()
    provider.shutdown()
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    for name, value in (("TRACELOOP_BASE_URL", "/api/otel"), ("TFY_HOST", "")):
        monkeypatch.setenv(name, serve.url + value)
        status_ = tt.init("advised", disable_batch=True, timeout=3, console=False)
        assert status_.traces_url == serve.url + "/api/otel/v1/traces"
        workflow(name=f"via-{name}")(lambda: None)()
        assert tt.flush(3)
        monkeypatch.delenv(name)
    names = {t.root_name for t in serve.store.traces()}
    assert names == {
        "via-otel-endpoint",
        "via-TRACELOOP_BASE_URL.workflow",
        "via-TFY_HOST.workflow",
    }


# -- bad input --------------------------------------------------------------------------------


def raw_exchange(server: LocalServer, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.receiver.port), timeout=5) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(payload)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except OSError:
            pass
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (otlp_json()[:0] + b"\x0a\xff\xff\xff\x0f\x01", PROTOBUF, 400),  # truncated protobuf
        (b"{not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (b"hello", "text/plain", 415),
        (gzip.compress(b"\x00" * 10), "application/json", 400),
    ],
    ids=[
        "truncated-protobuf",
        "invalid-json",
        "json-array",
        "wrong-content-type",
        "gzip-unlabelled",
    ],
)
def test_malformed_bodies_get_4xx_and_serving_goes_on(
    serve: LocalServer, body: bytes, content_type: str, status: int
) -> None:
    got, _, answer = request(serve.url + "/api/otel/v1/traces", body, content_type)
    assert got == status, answer
    assert serve.store.version() == 0
    assert_still_serving(serve)


def test_truncated_sdk_protobuf_gets_400(serve: LocalServer) -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    provider = TracerProvider()
    span = provider.get_tracer("t").start_span("whole")
    span.end()
    body = encode_spans([span]).SerializeToString()  # type: ignore[list-item]
    got, _, answer = request(serve.url + "/api/otel/v1/traces", body[: len(body) // 2])
    assert got == 400 and b"invalid OTLP protobuf" in answer
    assert_still_serving(serve)


def test_fifty_megabyte_body_is_refused(serve: LocalServer) -> None:
    size = 50 * 1024 * 1024
    head = (
        f"POST /api/otel/v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: {PROTOBUF}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    ).encode()
    answer = raw_exchange(serve, head + b"\0" * (1024 * 1024))
    assert answer.startswith(b"HTTP/1.1 413 ")
    chunked = (
        f"POST /api/otel/v1/traces HTTP/1.1\r\nHost: localhost\r\nContent-Type: {PROTOBUF}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + (b"%x\r\n" % (1024 * 1024) + b"\0" * (1024 * 1024) + b"\r\n") * 50
    assert raw_exchange(serve, chunked).startswith(b"HTTP/1.1 413 ")
    assert_still_serving(serve)


def test_garbage_on_the_socket_does_not_stop_it(serve: LocalServer) -> None:
    assert b"400" in raw_exchange(serve, b"\x16\x03\x01garbage\r\n\r\n")
    assert_still_serving(serve)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300), as_json=st.booleans())
def test_random_bodies_get_a_2xx_or_4xx(serve: LocalServer, body: bytes, as_json: bool) -> None:
    content_type = "application/json" if as_json else PROTOBUF
    status, _, _ = request(serve.url + "/api/otel/v1/traces", body, content_type)
    assert status == 200 or 400 <= status < 500


def test_web_routes_refuse_foreign_hosts_and_unknown_paths(serve: LocalServer) -> None:
    status, headers, body = request(serve.url + "/")
    assert status == 200 and b"<title>truefoundry-tracing" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert request(serve.url + "/static/app.js")[1]["Content-Type"].startswith("text/javascript")
    # DNS rebinding: a page on another site resolving its name to 127.0.0.1.
    assert request(serve.url + "/api/traces", headers={"Host": "evil.example:4318"})[0] == 403
    assert request(serve.url + "/api/traces/" + "ab" * 16)[0] == 404
    assert request(serve.url + "/nothing-here")[0] == 404
    assert request(serve.url + "/api/traces", b"x", "text/plain", method="POST")[0] == 404
    assert serve.store.version() == 0


def test_the_cli_does_not_load_the_testing_toolkit() -> None:
    code = (
        "import sys, truefoundry_tracing.cli as c, truefoundry_tracing.cli._serve, "
        "truefoundry_tracing.cli._web, truefoundry_tracing.cli._show, "
        "truefoundry_tracing.cli._doctor\n"
        "print(sorted(m for m in sys.modules if m.startswith('truefoundry_tracing.testing')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


# -- the command itself -------------------------------------------------------------------------


def start_cli(data: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "truefoundry_tracing",
            "serve",
            "--port",
            "0",
            "--data",
            str(data),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+)/api/otel/v1/traces", first)
    assert match, first
    return proc, match.group(1)


def stop_cli(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    return out


def test_cli_serve_restart_and_show(tmp_path: Path) -> None:
    data = tmp_path / "store"
    proc, url = start_cli(data)
    try:
        trace_id = export_with_sdk(url + "/api/otel/v1/traces", app="cli-app")
    finally:
        out = stop_cli(proc)
    assert f"trace {trace_id}  app=cli-app  spans=2" in out
    assert "stopping" in out and "Traceback" not in out

    proc, url = start_cli(data)
    try:
        listed = get_json(url + "/api/traces")["traces"]
        assert [t["trace_id"] for t in listed] == [trace_id]
        busy_port = url.rsplit(":", 1)[1]
        clash = subprocess.run(
            [sys.executable, "-m", "truefoundry_tracing", "serve", "--port", busy_port,
             "--data", str(tmp_path / "other")],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert clash.returncode == 1
        assert f"port {busy_port} on 127.0.0.1 is already in use" in clash.stdout
    finally:
        stop_cli(proc)

    shown = subprocess.run(
        [sys.executable, "-m", "truefoundry_tracing", "show", "--data", str(data)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert shown.returncode == 0
    assert "checkout  [internal]" in shown.stdout and "└── charge  [internal]" in shown.stdout


def test_cli_serve_warns_when_not_on_loopback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "truefoundry_tracing", "serve", "--host", "0.0.0.0", "--port", "0",
         "--data", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline()]
    while lines[-1] and "Press Ctrl-C" not in lines[-1]:  # the whole banner, then stop
        lines.append(proc.stdout.readline())
    out = stop_cli(proc)
    assert any(
        "not loopback: anyone who can reach this port can read" in line for line in [*lines, out]
    )
