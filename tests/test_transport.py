"""Verdicts: what happened, the fix and what became of the spans, as separate sentences."""

from __future__ import annotations

import re
import socket
import ssl

import pytest
import requests

from truefoundry_tracing._transport import Hints, Verdict, classify_exception, classify_status

URL = "https://tfy.example.com/api/otel/v1/traces"
HINTS = Hints(url=URL)
# A setting is named as an environment variable, an argument or a keyword argument.
SETTING = re.compile(r"\b(TFY_[A-Z_]+|TRACELOOP_[A-Z_]+|REQUESTS_CA_BUNDLE|HTTPS_PROXY|\w+=)")

STATUS_VERDICTS = [
    classify_status(status, {}, HINTS) for status in (401, 403, 404, 413, 429, 500, 503, 400)
]
EXCEPTION_VERDICTS = [
    classify_exception(exc, HINTS)
    for exc in (
        socket.gaierror(-2, "Name or service not known"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        ssl.SSLCertVerificationError("certificate verify failed"),
        ConnectionResetError(104, "Connection reset by peer"),
        requests.exceptions.InvalidHeader("Invalid leading whitespace"),
        RuntimeError("something else"),
    )
]
FAILURES = STATUS_VERDICTS + EXCEPTION_VERDICTS


def _sentence(text: str) -> bool:
    return bool(text) and text[0].isupper() and text.endswith(".")


@pytest.mark.parametrize("verdict", FAILURES, ids=lambda v: f"{v.code}-{v.status}")
def test_each_failure_has_a_problem_an_action_and_a_fate_for_the_spans(verdict: Verdict) -> None:
    assert URL in verdict.problem and verdict.problem.endswith(".")
    assert _sentence(verdict.action), verdict.action
    assert URL not in verdict.action
    assert _sentence(verdict.spans), verdict.spans
    assert ("kept and retried" in verdict.spans) == verdict.retryable
    assert ("dropped" in verdict.spans) == (not verdict.retryable)
    assert verdict.message == f"{verdict.problem} {verdict.action} {verdict.spans}"
    assert verdict.advice == f"{verdict.problem} {verdict.action}"


@pytest.mark.parametrize(
    "verdict",
    [v for v in FAILURES if v.code not in ("rate_limited", "server_error", "reset", "error")],
    ids=lambda v: f"{v.code}-{v.status}",
)
def test_a_fix_that_is_a_setting_names_it(verdict: Verdict) -> None:
    assert SETTING.search(verdict.action), verdict.action


def test_the_action_names_where_the_setting_came_from() -> None:
    hints = Hints(
        url=URL,
        key_source="TRACELOOP_HEADERS",
        project_source="--tracing-project",
        host_source="TRACELOOP_BASE_URL",
    )
    assert classify_status(401, {}, hints).action.startswith("Check TRACELOOP_HEADERS")
    assert classify_status(403, {}, hints).action.startswith("Check --tracing-project")
    assert classify_status(404, {}, hints).action.startswith("Set TRACELOOP_BASE_URL")
    no_key = Hints(url=URL, has_key=False)
    assert classify_status(401, {}, no_key).action.startswith("Set TFY_API_KEY")


def test_a_fixed_time_limit_is_stated_in_seconds() -> None:
    assert "within the timeout" in classify_exception(TimeoutError(), HINTS).problem
    limited = Hints(url=URL, timeout=2.5, timeout_source="--timeout")
    verdict = classify_exception(TimeoutError(), limited)
    assert "within 2.5 s" in verdict.problem
    assert verdict.action.endswith("raise --timeout.")


def test_accepted_needs_no_action() -> None:
    verdict = classify_status(200, {}, HINTS)
    assert verdict.ok and (verdict.action, verdict.spans) == ("", "")
    assert verdict.message == verdict.advice == f"200 from {URL}: spans accepted."


def test_an_exporter_built_verdict_keeps_its_whole_text_as_the_message() -> None:
    # The exporter builds its own deadline verdict with the positional text alone.
    verdict = Verdict("timeout", "no answer before the deadline.", retryable=True)
    assert verdict.message == verdict.advice == "no answer before the deadline."
