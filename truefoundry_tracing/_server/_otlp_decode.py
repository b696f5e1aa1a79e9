"""Decoding OTLP/HTTP trace export bodies (protobuf or JSON, optionally compressed).

:func:`decode_export` turns a request body into :class:`~truefoundry_tracing._model.SpanRecord`
objects the way an OpenTelemetry collector or TrueFoundry's endpoint reads it, and refuses what
they would refuse with an :class:`~._httpd.HTTPError` carrying the status to answer (400, 413
or 415) and a short reason.

Example:
    >>> spans, is_json = decode_export(b"{}", "application/json", "", limit=1024)
    >>> spans, is_json
    ([], True)
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any, Final

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from .._model import SpanRecord, records_from_otlp
from ._httpd import HTTPError

__all__ = ["JSON_TYPE", "PROTOBUF_TYPE", "decode_export"]

PROTOBUF_TYPE: Final = "application/x-protobuf"
JSON_TYPE: Final = "application/json"
_PROTOBUF_TYPES: Final = frozenset({PROTOBUF_TYPE, "application/protobuf"})

# OTLP/JSON ids are hex strings, while protobuf's JSON mapping expects base64 for bytes fields.
_ID_KEYS: Final = frozenset(
    {"traceId", "trace_id", "spanId", "span_id", "parentSpanId", "parent_span_id"}
)
# Accept short enum names ("SERVER", "ERROR") next to ints and full names ("SPAN_KIND_SERVER").
_ENUM_PREFIXES: Final = {"kind": "SPAN_KIND_", "code": "STATUS_CODE_"}


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    wbits_options: tuple[int, ...]
    if coding in ("gzip", "x-gzip"):
        wbits_options = (16 + zlib.MAX_WBITS,)
    elif coding == "deflate":
        # RFC 9110 says zlib-wrapped; some clients send raw deflate.
        wbits_options = (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    else:
        raise HTTPError(
            415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none"
        )
    error: zlib.error | None = None
    for wbits in wbits_options:
        try:
            return _inflate(body, wbits, limit, multi_member=wbits > zlib.MAX_WBITS)
        except zlib.error as err:
            error = err
    raise HTTPError(400, f"invalid {coding} body: {error}")


def _inflate(data: bytes, wbits: int, limit: int, *, multi_member: bool) -> bytes:
    out = bytearray()
    while True:
        inflater = zlib.decompressobj(wbits)
        out += inflater.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise HTTPError(413, f"decompressed body exceeds the {limit}-byte limit")
        if not inflater.eof:
            raise zlib.error("compressed body is truncated")
        data = inflater.unused_data
        if not data:
            return bytes(out)
        if not multi_member:
            raise zlib.error("trailing bytes after the compressed body")


def _to_proto_json(node: Any) -> Any:
    """Rewrite an OTLP/JSON document into protobuf's JSON mapping (hex ids to base64)."""
    if isinstance(node, dict):
        out: dict[Any, Any] = {}
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                try:
                    raw = bytes.fromhex(value)
                except ValueError:
                    raise HTTPError(400, f"{key} must be a hex string, got {value!r}") from None
                out[key] = base64.b64encode(raw).decode("ascii")
            elif key in _ENUM_PREFIXES and isinstance(value, str):
                prefix = _ENUM_PREFIXES[key]
                out[key] = value if value.upper().startswith(prefix) else prefix + value.upper()
            else:
                out[key] = _to_proto_json(value)
        return out
    if isinstance(node, list):
        return [_to_proto_json(value) for value in node]
    return node


def _parse_json(raw: bytes) -> ExportTraceServiceRequest:
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise HTTPError(400, f"invalid JSON: {err}") from None
    if not isinstance(document, dict):
        raise HTTPError(400, "an OTLP/JSON body must be a JSON object")
    try:
        converted = _to_proto_json(document)
    except RecursionError:
        raise HTTPError(400, "JSON body is nested too deeply") from None
    message = ExportTraceServiceRequest()
    try:
        json_format.ParseDict(converted, message, ignore_unknown_fields=True)
    except Exception as err:  # ParseError, and whatever odd input makes protobuf raise
        raise HTTPError(400, f"invalid OTLP/JSON: {err}") from None
    return message


def _parse_protobuf(raw: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(raw)
    except Exception as err:  # DecodeError, and whatever odd input makes protobuf raise
        raise HTTPError(400, f"invalid OTLP protobuf: {err or type(err).__name__}") from None
    return message


def _check_ids(message: ExportTraceServiceRequest) -> None:
    for resource_spans in message.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                for name, value, size in (
                    ("trace_id", span.trace_id, 16),
                    ("span_id", span.span_id, 8),
                    ("parent_span_id", span.parent_span_id, 8),
                ):
                    if len(value) != size and not (name == "parent_span_id" and not value):
                        raise HTTPError(
                            400,
                            f"span {span.name!r}: {name} must be {size} bytes, got {len(value)}",
                        )


def decode_export(
    body: bytes, content_type: str, content_encoding: str, *, limit: int
) -> tuple[list[SpanRecord], bool]:
    """Decode an export body; return its spans and whether it was JSON.

    Raises:
        HTTPError: 415 for a content type or encoding OTLP does not use, 413 when the
            decompressed body exceeds ``limit`` bytes, 400 when the body does not decode.
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in _PROTOBUF_TYPES and media_type != JSON_TYPE:
        shown = content_type or "none"
        raise HTTPError(
            415,
            f"unsupported Content-Type {shown!r}; send application/x-protobuf or application/json",
        )
    raw = _decompress(body, content_encoding, limit)
    is_json = media_type == JSON_TYPE
    message = _parse_json(raw) if is_json else _parse_protobuf(raw)
    _check_ids(message)
    try:
        spans = records_from_otlp(message)
    except Exception as err:
        raise HTTPError(400, f"could not read the spans: {err}") from None
    return spans, is_json
