"""OTLPReceiver driven by the real OpenTelemetry exporter, urllib and raw sockets (no mocks)."""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import socket
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from truefoundry_tracing._server._httpd import HTTPReply
from truefoundry_tracing.testing import OTLPReceiver, ReceivedRequest

PROTOBUF = "application/x-protobuf"
TRACE_ID = "5b8efff798038103d269b633813fc60c"
PARENT_ID = "eee19b7ec3c1b174"
CHILD_ID = "eee19b7ec3c1b173"


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


def post(
    url: str,
    body: bytes,
    content_type: str | None = PROTOBUF,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 5.0,
    context: ssl.SSLContext | None = None,
    method: str = "POST",
) -> tuple[int, dict[str, str], bytes]:
    """Send one request with urllib; return (status, headers, body) for any status."""
    all_headers = dict(headers or {})
    if content_type is not None:
        all_headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


def export_request(*names: str, trace_id: bytes | None = None) -> ExportTraceServiceRequest:
    """A protobuf export request with one root span per name."""
    spans = [
        Span(
            trace_id=trace_id if trace_id is not None else bytes.fromhex(TRACE_ID),
            span_id=(index + 1).to_bytes(8, "big"),
            name=name,
            kind=Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=1_000,
            end_time_unix_nano=2_000,
            attributes=[KeyValue(key="index", value=AnyValue(int_value=index))],
        )
        for index, name in enumerate(names or ("op",))
    ]
    resource = ProtoResource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))]
    )
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(spans=spans)])]
    )


def body_of(*names: str) -> bytes:
    data: bytes = export_request(*names).SerializeToString()
    return data


def make_provider(endpoint: str, **exporter_kwargs: Any) -> tuple[TracerProvider, OTLPSpanExporter]:
    exporter = OTLPSpanExporter(endpoint=endpoint, **exporter_kwargs)
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout-svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def assert_still_serving(receiver: OTLPReceiver) -> None:
    status, _, _ = post(receiver.url + "/v1/traces", body_of("after"))
    assert status == 200
    assert receiver.spans[-1].name == "after"


def raw_exchange(receiver: OTLPReceiver, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def wait_until_hanging(receiver: OTLPReceiver, count: int = 1) -> None:
    deadline = time.monotonic() + 5
    while receiver.hanging < count:
        assert time.monotonic() < deadline, "the request never reached the hang"
        time.sleep(0.01)


# -- real exporter ---------------------------------------------------------------------------


def test_sdk_exporter_spans_arrive_decoded() -> None:
    hooked: list[ReceivedRequest] = []
    with OTLPReceiver(on_export=hooked.append) as rx:
        provider, _ = make_provider(
            rx.url + "/api/otel/v1/traces",
            headers={"Authorization": "Bearer tfy-secret", "TFY-Tracing-Project": "proj-1"},
        )
        tracer = provider.get_tracer("shop.tracer")
        with tracer.start_as_current_span(
            "checkout.workflow",
            attributes={"order.id": "A-17", "items": 3, "total": 9.5, "paid": True},
        ) as parent:
            parent.set_attribute("tags", ["a", "b"])
            with tracer.start_as_current_span("payment.call", kind=SpanKind.CLIENT) as child:
                child.add_event("retry", {"attempt": 2})
                child.set_status(Status(StatusCode.ERROR, "card declined"))
        provider.shutdown()

        spans = rx.wait_for_spans(2)
        requests = rx.requests

    assert [s.name for s in spans] == ["payment.call", "checkout.workflow"]
    child_rec, parent_rec = spans
    assert child_rec.parent_id == parent_rec.span_id
    assert parent_rec.parent_id is None
    assert child_rec.trace_id == parent_rec.trace_id
    assert len(parent_rec.trace_id) == 32 and len(parent_rec.span_id) == 16
    assert child_rec.kind == "CLIENT"
    assert (child_rec.status, child_rec.status_message) == ("ERROR", "card declined")
    assert [(e.name, dict(e.attributes)) for e in child_rec.events] == [("retry", {"attempt": 2})]
    assert parent_rec.attributes == {
        "order.id": "A-17",
        "items": 3,
        "total": 9.5,
        "paid": True,
        "tags": ("a", "b"),
    }
    assert parent_rec.service_name == "checkout-svc"
    assert parent_rec.scope == "shop.tracer"

    assert len(requests) == 2  # SimpleSpanProcessor exports each span on its own
    for request in requests:
        assert request.method == "POST"
        assert request.path == "/api/otel/v1/traces"
        assert request.status == 200 and request.ok
        assert request.content_type == "application/x-protobuf"
        assert request.headers["authorization"] == "Bearer tfy-secret"
        assert request.headers["tfy-tracing-project"] == "proj-1"
        assert all(name == name.lower() for name in request.headers)
        assert request.received_at == pytest.approx(time.time(), abs=30)
    assert [r.spans[0].name for r in requests] == ["payment.call", "checkout.workflow"]
    decoded = ExportTraceServiceRequest.FromString(requests[0].body)
    assert decoded.resource_spans[0].scope_spans[0].spans[0].name == "payment.call"
    assert hooked == requests


@pytest.mark.parametrize("compression", [Compression.Gzip, Compression.Deflate])
def test_sdk_exporter_compressed(receiver: OTLPReceiver, compression: Compression) -> None:
    provider, _ = make_provider(receiver.url + "/v1/traces", compression=compression)
    with provider.get_tracer("t").start_as_current_span("zipped", attributes={"k": "v" * 500}):
        pass
    provider.shutdown()

    (span,) = receiver.wait_for_spans(1)
    assert (span.name, span.attributes["k"]) == ("zipped", "v" * 500)
    (request,) = receiver.requests
    assert request.headers["content-encoding"] == compression.value
    assert len(request.body) < 500  # stored as it came over the wire, still compressed
    if compression is Compression.Gzip:
        assert request.body[:2] == b"\x1f\x8b"


def test_exporter_retries_through_a_reset_connection(receiver: OTLPReceiver) -> None:
    receiver.reset_connection(times=1)
    provider, _ = make_provider(receiver.url + "/v1/traces", timeout=5)
    provider.get_tracer("t").start_span("survivor").end()
    provider.shutdown()
    assert [r.status for r in receiver.requests] == [0, 200]
    assert [s.name for s in receiver.spans] == ["survivor"]


# -- OTLP/JSON -------------------------------------------------------------------------------


def otlp_json(camel: bool = True) -> dict[str, Any]:
    def k(camel_key: str, snake_key: str) -> str:
        return camel_key if camel else snake_key

    return {
        k("resourceSpans", "resource_spans"): [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]
                },
                k("scopeSpans", "scope_spans"): [
                    {
                        "scope": {"name": "json.scope"},
                        "spans": [
                            {
                                k("traceId", "trace_id"): TRACE_ID,
                                k("spanId", "span_id"): PARENT_ID,
                                "name": "root",
                                "kind": 2,
                                k(
                                    "startTimeUnixNano", "start_time_unix_nano"
                                ): "1700000000000000000",
                                k("endTimeUnixNano", "end_time_unix_nano"): 1700000000500000000,
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {
                                        "key": "list",
                                        "value": {"arrayValue": {"values": [{"doubleValue": 1.5}]}},
                                    },
                                ],
                                "status": {},
                                "unknownFieldFromTheFuture": {"x": 1},
                            },
                            {
                                k("traceId", "trace_id"): TRACE_ID.upper(),
                                k("spanId", "span_id"): CHILD_ID,
                                k("parentSpanId", "parent_span_id"): PARENT_ID,
                                "name": "child",
                                "kind": "SPAN_KIND_CLIENT",
                                "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
                                "links": [
                                    {
                                        k("traceId", "trace_id"): TRACE_ID,
                                        k("spanId", "span_id"): CHILD_ID,
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }


@pytest.mark.parametrize("camel", [True, False], ids=["lowerCamel", "snake_case"])
def test_otlp_json_with_hex_ids(receiver: OTLPReceiver, camel: bool) -> None:
    body = json.dumps(otlp_json(camel)).encode()
    status, headers, answer = post(receiver.url + "/v1/traces", body, "application/json")

    assert (status, answer) == (200, b"{}")
    assert headers["Content-Type"] == "application/json"
    root, child = receiver.spans
    assert (root.trace_id, root.span_id, root.parent_id) == (TRACE_ID, PARENT_ID, None)
    assert (child.trace_id, child.parent_id) == (TRACE_ID, PARENT_ID)
    assert (root.kind, child.kind) == ("SERVER", "CLIENT")
    assert (child.status, child.status_message) == ("ERROR", "boom")
    assert root.attributes == {"n": 42, "ok": True, "list": (1.5,)}
    assert (root.start_ns, root.end_ns) == (1700000000000000000, 1700000000500000000)
    assert root.service_name == "json-svc" and root.scope == "json.scope"


def test_otlp_json_short_enum_names_and_gzip(receiver: OTLPReceiver) -> None:
    document = otlp_json()
    span = document["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    span["kind"], span["status"]["code"] = "producer", "OK"
    body = gzip.compress(json.dumps(document).encode())
    status, _, _ = post(
        receiver.url + "/v1/traces",
        body,
        "application/json; charset=utf-8",
        {"Content-Encoding": "gzip"},
    )
    assert status == 200
    assert (receiver.spans[1].kind, receiver.spans[1].status) == ("PRODUCER", "OK")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"traceId": "not-hex"}, "hex"),
        ({"spanId": "abcd"}, "span_id must be 8 bytes"),
        ({"name": {"nested": 1}}, "invalid OTLP/JSON"),
        ({"startTimeUnixNano": "soon"}, "invalid OTLP/JSON"),
    ],
)
def test_otlp_json_bad_values_get_400(
    receiver: OTLPReceiver, change: dict[str, str], reason: str
) -> None:
    document = otlp_json()
    document["resourceSpans"][0]["scopeSpans"][0]["spans"][0].update(change)
    status, _, answer = post(
        receiver.url + "/v1/traces", json.dumps(document).encode(), "application/json"
    )
    assert status == 400
    assert reason in answer.decode()
    assert receiver.requests[-1].reason in answer.decode()
    assert receiver.spans == []


# -- scripted faults -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (401, {"WWW-Authenticate": "Bearer"}),
        (403, None),
        (404, None),
        (413, None),
        (429, {"Retry-After": "1"}),
        (500, None),
        (503, {"Retry-After": "2"}),
    ],
)
def test_respond_with_status(
    receiver: OTLPReceiver, status: int, headers: dict[str, str] | None
) -> None:
    receiver.respond_with(status, times=2, headers=headers, body=b"nope")
    url = receiver.url + "/api/otel/v1/traces"
    answers = [post(url, body_of(f"try{i}")) for i in range(3)]

    assert [a[0] for a in answers] == [status, status, 200]
    for name, value in (headers or {}).items():
        assert answers[0][1][name] == value
    assert answers[0][2] == b"nope"
    assert receiver.requests[0].reason == "scripted by respond_with()"
    assert [r.status for r in receiver.requests] == [status, status, 200]
    assert [r.spans[0].name for r in receiver.requests] == ["try0", "try1", "try2"]
    assert [s.name for s in receiver.spans] == ["try2"]  # only the accepted one


def test_faults_queue_in_order_and_forever_until_reset(receiver: OTLPReceiver) -> None:
    url = receiver.url + "/v1/traces"
    receiver.respond_with(503, times=1)
    receiver.respond_with(429, times=1, headers={"Retry-After": "0"})
    receiver.respond_with(500)  # until reset_faults()
    assert [post(url, body_of())[0] for _ in range(5)] == [503, 429, 500, 500, 500]
    receiver.reset_faults()
    assert post(url, body_of())[0] == 200


def test_faults_only_apply_to_trace_exports(receiver: OTLPReceiver) -> None:
    receiver.respond_with(500, times=1)
    assert post(receiver.url + "/elsewhere", b"x")[0] == 404
    assert post(receiver.url + "/v1/traces", b"", method="PUT")[0] == 405
    assert post(receiver.url + "/v1/traces", body_of())[0] == 500


def test_fault_arguments_are_checked(receiver: OTLPReceiver) -> None:
    with pytest.raises(ValueError, match="times"):
        receiver.respond_with(500, times=0)
    with pytest.raises(ValueError, match="status"):
        receiver.respond_with(99)
    with pytest.raises(ValueError, match="seconds"):
        receiver.slow(-1)


def test_sdk_exporter_gives_up_on_401_and_retries_503(receiver: OTLPReceiver) -> None:
    receiver.respond_with(401, times=1)
    receiver.respond_with(503, times=1, headers={"Retry-After": "0"})
    provider, _ = make_provider(receiver.url + "/v1/traces", timeout=3)
    tracer = provider.get_tracer("t")
    tracer.start_span("denied").end()  # 401 is final: no retry
    tracer.start_span("retried").end()  # 503 is transient: retried at once (Retry-After: 0)
    provider.shutdown()
    assert [(r.status, r.spans[0].name) for r in receiver.requests] == [
        (401, "denied"),
        (503, "retried"),
        (200, "retried"),
    ]
    assert [s.name for s in receiver.spans] == ["retried"]


def test_hang_released_by_reset_faults(receiver: OTLPReceiver) -> None:
    receiver.hang()
    result: list[int] = []
    client = threading.Thread(
        target=lambda: result.append(
            post(receiver.url + "/v1/traces", body_of("held"), timeout=10)[0]
        )
    )
    client.start()
    wait_until_hanging(receiver)
    assert result == [] and receiver.requests == []
    receiver.reset_faults()
    client.join(5)
    assert result == [200]
    assert receiver.hanging == 0
    assert [s.name for s in receiver.spans] == ["held"]


def test_hang_released_by_stop_promptly() -> None:
    rx = OTLPReceiver().start()
    rx.hang()
    errors: list[BaseException] = []

    def send() -> None:
        try:
            post(rx.url + "/v1/traces", body_of("held"), timeout=10)
        except (OSError, http.client.HTTPException) as err:
            errors.append(err)

    clients = [threading.Thread(target=send) for _ in range(3)]
    for client in clients:
        client.start()
    wait_until_hanging(rx, 3)
    started = time.monotonic()
    rx.stop()
    assert time.monotonic() - started < 3
    for client in clients:
        client.join(5)
    assert len(errors) == 3  # dropped without an answer
    assert [r.status for r in rx.requests] == [0, 0, 0]
    assert rx.spans == []


def test_hang_gives_up_after_max_hang_seconds() -> None:
    with OTLPReceiver() as rx:
        rx.max_hang_seconds = 0.3
        rx.hang()
        with pytest.raises((OSError, http.client.HTTPException)):
            post(rx.url + "/v1/traces", body_of("abandoned"), timeout=5)
        (request,) = rx.requests
        assert (request.status, request.spans) == (0, ())
        assert "timeout" in request.reason


def test_hang_makes_the_sdk_exporter_time_out(receiver: OTLPReceiver) -> None:
    receiver.hang()
    provider, _ = make_provider(receiver.url + "/v1/traces", timeout=0.5)
    started = time.monotonic()
    provider.get_tracer("t").start_span("lost").end()  # exports synchronously, then gives up
    assert 0.4 < time.monotonic() - started < 4
    assert receiver.hanging >= 1
    provider.shutdown()


def test_slow(receiver: OTLPReceiver) -> None:
    receiver.slow(0.4, times=1)
    url = receiver.url + "/v1/traces"
    started = time.monotonic()
    assert post(url, body_of("slow"))[0] == 200
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert post(url, body_of("fast"))[0] == 200
    assert time.monotonic() - started < 0.4
    assert [s.name for s in receiver.spans] == ["slow", "fast"]


def test_reset_connection_is_a_client_side_error(receiver: OTLPReceiver) -> None:
    receiver.reset_connection(times=1)
    with pytest.raises((OSError, http.client.HTTPException)):
        post(receiver.url + "/v1/traces", body_of("cut"))
    (request,) = receiver.requests
    assert request.status == 0 and not request.ok
    assert request.spans[0].name == "cut"  # the body was read before the reset
    assert receiver.spans == []
    assert_still_serving(receiver)


# -- TLS -----------------------------------------------------------------------------------------


def test_tls_trusted_and_untrusted_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a session's CA file, i.e. the exporter's
    # certificate_file (psf/requests#3829); clear them so the exporter trusts our CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with OTLPReceiver(tls=True) as rx:
        assert rx.url.startswith("https://127.0.0.1:")
        assert rx.cafile is not None
        trusting = ssl.create_default_context(cafile=rx.cafile)
        assert post(rx.url + "/v1/traces", body_of("secure"), context=trusting)[0] == 200

        with pytest.raises(urllib.error.URLError) as failure:
            post(rx.url + "/v1/traces", body_of("x"), context=ssl.create_default_context())
        assert isinstance(failure.value.reason, ssl.SSLCertVerificationError)

        provider, _ = make_provider(rx.url + "/v1/traces", certificate_file=rx.cafile)
        provider.get_tracer("t").start_span("via-sdk").end()
        provider.shutdown()
        assert [s.name for s in rx.spans] == ["secure", "via-sdk"]
        cafile = rx.cafile
    assert OTLPReceiver().cafile is None
    with pytest.raises(FileNotFoundError):
        open(cafile).close()  # removed on stop()


def test_tls_without_trustme_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "trustme", None)
    rx = OTLPReceiver(tls=True)
    with pytest.raises(ImportError, match="pip install trustme"):
        rx.start()


# -- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "reason"),
    [
        (body_of("a", "b")[:-5], PROTOBUF, {}, 400, "invalid OTLP protobuf"),
        (b"{not json", "application/json", {}, 400, "invalid JSON"),
        (b"[1, 2]", "application/json", {}, 400, "JSON object"),
        (body_of(), "text/plain", {}, 415, "unsupported Content-Type"),
        (body_of(), None, {}, 415, "unsupported Content-Type"),  # urllib's form default
        (body_of(), PROTOBUF, {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (b"\x1f\x8bnot gzip", PROTOBUF, {"Content-Encoding": "gzip"}, 400, "invalid gzip"),
        (gzip.compress(body_of())[:-8], PROTOBUF, {"Content-Encoding": "gzip"}, 400, "gzip"),
        (
            export_request("short", trace_id=b"\x01" * 8).SerializeToString(),
            PROTOBUF,
            {},
            400,
            "trace_id must be 16 bytes",
        ),
    ],
    ids=[
        "truncated-protobuf",
        "invalid-json",
        "json-array",
        "text-plain",
        "form-urlencoded",
        "brotli",
        "bad-gzip",
        "truncated-gzip",
        "short-trace-id",
    ],
)
def test_malformed_bodies_get_4xx_and_server_keeps_serving(
    receiver: OTLPReceiver,
    body: bytes,
    content_type: str | None,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    got, answer_headers, answer = post(receiver.url + "/v1/traces", body, content_type, headers)
    assert got == status
    assert reason in answer.decode()
    assert answer_headers["Content-Type"].startswith("text/plain")
    (request,) = receiver.requests
    assert (request.status, request.body, request.spans) == (status, body, ())
    assert reason in request.reason
    assert_still_serving(receiver)


def test_fifty_megabyte_content_length_is_refused_unread(receiver: OTLPReceiver) -> None:
    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-protobuf\r\nContent-Length: 52428800\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_exchange(receiver, head + b"\0" * 65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"exceeds the 20971520-byte limit" in answer
    assert time.monotonic() - started < 3
    (request,) = receiver.requests
    assert (request.status, request.body) == (413, b"")
    assert_still_serving(receiver)


def test_oversized_with_expect_100_continue_is_refused_before_the_body() -> None:
    with OTLPReceiver(max_body_bytes=1000) as rx:
        head = (
            b"POST /v1/traces HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-protobuf\r\nContent-Length: 5000\r\n\r\n"
        )
        answer = raw_exchange(rx, head)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"100 Continue" not in answer
        assert rx.requests[0].status == 413
        assert_still_serving(rx)


def test_size_limit_applies_to_compressed_and_decompressed_bodies() -> None:
    with OTLPReceiver(max_body_bytes=2000) as rx:
        url = rx.url + "/v1/traces"
        assert post(url, b"\0" * 2001)[0] == 413
        bomb = gzip.compress(b"\0" * 1_000_000)
        assert len(bomb) < 2000
        status, _, answer = post(url, bomb, headers={"Content-Encoding": "gzip"})
        assert (status, b"decompressed" in answer) == (413, True)
        assert (
            post(url, zlib.compress(body_of()), headers={"Content-Encoding": "deflate"})[0] == 200
        )


def test_wrong_paths_and_methods(receiver: OTLPReceiver) -> None:
    assert post(receiver.url + "/", b"", method="GET")[0] == 404
    status, headers, _ = post(receiver.url + "/v1/traces", b"", method="GET")
    assert (status, headers["Allow"]) == (405, "POST")
    assert post(receiver.url + "/v1/traces/", body_of())[0] == 404
    assert post(receiver.url + "/v1/traces?x=1", body_of("query"))[0] == 200
    assert [r.status for r in receiver.requests] == [404, 405, 404, 200]
    assert receiver.requests[-1].path == "/v1/traces?x=1"


def test_keep_alive_connection_survives_refusals(receiver: OTLPReceiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        exchanges = [
            ("GET", "/", None, {}),
            ("GET", "/v1/traces", None, {}),
            ("POST", "/nowhere", b"some body", {"Content-Type": PROTOBUF}),
            ("DELETE", "/v1/traces", b"", {}),
            ("POST", "/v1/traces", body_of(), {"Content-Type": "text/plain"}),
            ("POST", "/v1/traces", body_of("kept"), {"Content-Type": PROTOBUF}),
            ("HEAD", "/", None, {}),
        ]
        statuses = []
        for method, path, body, headers in exchanges:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            if response.status == 405:
                assert response.getheader("Allow") == "POST"
        assert statuses == [404, 405, 404, 405, 415, 200, 404]
        assert [r.status for r in receiver.requests] == statuses
        assert [s.name for s in receiver.spans] == ["kept"]
    finally:
        conn.close()


def test_chunked_body_and_missing_length(receiver: OTLPReceiver) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    try:
        body = body_of("chunked")
        conn.request(
            "POST",
            "/v1/traces",
            body=iter([body[:10], body[10:]]),
            headers={"Content-Type": PROTOBUF},
            encode_chunked=True,
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 200
    finally:
        conn.close()
    assert [s.name for s in receiver.spans] == ["chunked"]
    answer = raw_exchange(
        receiver,
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 411 ")


def test_garbage_instead_of_http_is_recorded(receiver: OTLPReceiver) -> None:
    answer = raw_exchange(receiver, b"\x16\x03\x01 this is not HTTP\r\n\r\n")
    assert b"400" in answer  # a bare HTTP/0.9-style error page
    answer = raw_exchange(receiver, b"POST /v1/traces HTTP/7.0\r\n\r\n")
    assert b"505" in answer
    body = body_of("first")
    answer = raw_exchange(
        receiver,
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-First: yes\r\n"
        b"Content-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n%s"
        b"NOT HTTP\r\n\r\n" % (len(body), body),
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and b"400" in answer
    statuses = [(r.status, r.headers.get("x-first")) for r in receiver.requests]
    assert statuses == [(400, None), (505, None), (200, "yes"), (400, None)]
    assert_still_serving(receiver)


# -- bookkeeping -------------------------------------------------------------------------------


def test_wait_for_spans_explains_a_timeout(receiver: OTLPReceiver) -> None:
    post(receiver.url + "/v1/traces", body_of("only-one"))
    post(receiver.url + "/v1/traces", body_of(), "text/plain")
    with pytest.raises(AssertionError) as failure:
        receiver.wait_for_spans(2, timeout=0.2)
    message = str(failure.value)
    assert "expected at least 2 span(s)" in message
    assert "1 arrived: ['only-one']" in message
    assert "-> 415 (unsupported Content-Type 'text/plain'" in message
    with pytest.raises(AssertionError, match="but 2 arrived"):
        receiver.wait_for_requests(3, timeout=0.1)
    assert len(receiver.wait_for_requests(2)) == 2


def test_waits_return_once_data_arrives_from_another_thread(receiver: OTLPReceiver) -> None:
    timer = threading.Timer(0.2, post, (receiver.url + "/v1/traces", body_of("late", "later")))
    timer.start()
    try:
        assert [s.name for s in receiver.wait_for_spans(2, timeout=5)] == ["late", "later"]
    finally:
        timer.join()


def test_snapshots_and_clear(receiver: OTLPReceiver) -> None:
    post(receiver.url + "/v1/traces", body_of("a"))
    snapshot = receiver.requests
    snapshot.clear()
    receiver.spans.clear()
    assert len(receiver.requests) == 1 and len(receiver.spans) == 1
    receiver.clear()
    assert receiver.requests == [] and receiver.spans == []


def test_concurrent_exports_are_all_recorded(receiver: OTLPReceiver) -> None:
    def send(worker: int) -> None:
        for i in range(5):
            assert post(receiver.url + "/v1/traces", body_of(f"w{worker}-{i}"))[0] == 200

    workers = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    assert len(receiver.wait_for_spans(40)) == 40
    assert len({s.name for s in receiver.spans}) == 40


def test_hook_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(request: ReceivedRequest) -> None:
        raise RuntimeError("disk full")

    with OTLPReceiver(on_export=broken) as rx, caplog.at_level(logging.ERROR):
        assert post(rx.url + "/v1/traces", body_of("x"))[0] == 200
        assert post(rx.url + "/v1/traces", body_of("y"))[0] == 200
    assert [s.name for s in rx.spans] == ["x", "y"]
    assert "on_export hook failed" in caplog.text and "disk full" in caplog.text


def test_authorize_refuses_before_decoding_and_records_the_refusal() -> None:
    seen: list[dict[str, str]] = []

    def authorize(headers: Mapping[str, str]) -> tuple[int, str] | None:
        seen.append(dict(headers))
        return None if headers.get("authorization") == "Bearer ok" else (401, "bad key")

    exported: list[ReceivedRequest] = []
    with OTLPReceiver(authorize=authorize, on_export=exported.append) as rx:
        status, _, answer = post(rx.url + "/v1/traces", body_of("refused"))
        assert (status, answer) == (401, b"bad key\n")
        assert (
            post(rx.url + "/v1/traces", body_of("kept"), headers={"Authorization": "Bearer ok"})[0]
            == 200
        )
        # Paths that are not trace exports never reach the hook.
        assert post(rx.url + "/elsewhere", body_of())[0] == 404
    assert [r.status for r in rx.requests] == [401, 200, 404]
    assert (rx.requests[0].reason, rx.requests[0].spans) == ("bad key", ())
    assert [s.name for s in rx.spans] == ["kept"]
    assert [r.spans[0].name for r in exported] == ["kept"]
    assert len(seen) == 2 and seen[1]["authorization"] == "Bearer ok"


def test_other_routes_answer_unrecorded_and_fall_back_to_404() -> None:
    calls: list[tuple[str, str, str]] = []

    def routes(method: str, target: str, headers: Mapping[str, str]) -> HTTPReply | None:
        calls.append((method, target, headers.get("host", "")))
        if target.startswith("/hello"):
            return HTTPReply(200, b"<p>hi</p>", "text/html", {"X-Extra": "1"})
        if target == "/boom":
            raise RuntimeError("route failed")
        return None

    with OTLPReceiver(other_routes=routes) as rx:
        status, headers, body = post(rx.url + "/hello?x=1", b"", None, method="GET")
        assert (status, body, headers["Content-Type"], headers["X-Extra"]) == (
            200,
            b"<p>hi</p>",
            "text/html",
            "1",
        )
        assert post(rx.url + "/nothing", b"", None, method="GET")[0] == 404
        assert post(rx.url + "/boom", b"", None, method="GET")[0] == 500
        assert_still_serving(rx)
        assert [c[:2] for c in calls] == [
            ("GET", "/hello?x=1"),
            ("GET", "/nothing"),
            ("GET", "/boom"),
        ]
        assert [r.status for r in rx.requests] == [404, 500, 200]


def test_max_recorded_keeps_only_the_newest() -> None:
    with OTLPReceiver(max_recorded=2) as rx:
        for name in ("a", "b", "c"):
            assert post(rx.url + "/v1/traces", body_of(name))[0] == 200
        assert [r.spans[0].name for r in rx.requests] == ["b", "c"]
        assert [s.name for s in rx.spans] == ["b", "c"]
    with pytest.raises(ValueError):
        OTLPReceiver(max_recorded=-1)


def test_lifecycle_and_addresses() -> None:
    rx = OTLPReceiver(paths=["/custom"])
    with pytest.raises(RuntimeError, match="start"):
        _ = rx.url
    assert rx.start() is rx and rx.start() is rx
    assert rx.url == f"http://127.0.0.1:{rx.port}"
    assert post(rx.url + "/custom", body_of())[0] == 200
    assert post(rx.url + "/v1/traces", body_of())[0] == 404
    assert "running" in repr(rx)
    rx.stop()
    rx.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        rx.start()
    with pytest.raises(OSError):
        post(rx.url + "/custom", body_of(), timeout=1)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    with OTLPReceiver(port=free_port) as fixed:
        assert fixed.port == free_port
    with pytest.raises(ValueError):
        OTLPReceiver(paths=["no-slash"])
    with pytest.raises(ValueError):
        OTLPReceiver(max_body_bytes=0)


def test_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with OTLPReceiver(host="::1") as rx:
        assert rx.url.startswith("http://[::1]:")
        assert post(rx.url + "/v1/traces", body_of("v6"))[0] == 200


# -- never crashes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as rx:
        yield rx


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "parentSpanId",
                    "name",
                    "kind",
                    "status",
                    "code",
                    "attributes",
                    "key",
                    "value",
                    "stringValue",
                    "intValue",
                    "arrayValue",
                    "values",
                    "kvlistValue",
                    "events",
                    "links",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=512), as_json=st.booleans(), gzipped=st.booleans())
def test_random_bytes_never_crash_it(
    shared_receiver: OTLPReceiver, body: bytes, as_json: bool, gzipped: bool
) -> None:
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    payload = gzip.compress(body) if gzipped else body
    content_type = "application/json" if as_json else PROTOBUF
    status, _, _ = post(shared_receiver.url + "/v1/traces", payload, content_type, headers)
    assert status == 200 or 400 <= status < 500


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.dictionaries(st.sampled_from(["resourceSpans", "x"]), json_values))
def test_otlp_shaped_json_never_crashes_it(
    shared_receiver: OTLPReceiver, document: dict[str, Any]
) -> None:
    body = json.dumps(document).encode()
    status, _, _ = post(shared_receiver.url + "/v1/traces", body, "application/json")
    assert status == 200 or 400 <= status < 500
    assert_still_serving(shared_receiver)
