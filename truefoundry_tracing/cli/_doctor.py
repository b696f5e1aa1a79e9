"""``truefoundry-tracing doctor``: what configuration is in force, and does the endpoint take it.

It resolves the configuration with the same function as ``init()`` (``_config.resolve``),
prints each value with where it came from, then sends one real probe span, synchronously,
with the same transport code the exporter uses (``_transport.post``), and explains the
outcome in words with the fix. A bad value in a variable, which ``init()`` logs and leaves
out, is a ``config_error`` verdict here, with the same words. After a 404, the probe is sent
again to the paths that would fix it (see ``_config._advice``), so the advice names a value
the collector accepted. Nothing here ever prints the API key, only its last 4 characters.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from .._config import Settings, mask_secret, resolve
from .._config._advice import candidates
from .._errors import ConfigError
from .._frameworks._gaps import untraced
from .._transport import Attempts, Hints, Verdict, post, post_retrying

__all__ = ["DoctorReport", "run_doctor"]

DEFAULT_PROBE_TIMEOUT = 5.0

# A short title per verdict code, for the first line of the report.
TITLES = {
    "accepted": "accepted",
    "invalid_request": "request could not be built",
    "dns": "DNS failure",
    "refused": "connection refused",
    "timeout": "timeout",
    "tls": "TLS error",
    "reset": "connection reset",
    "unauthorized": "key rejected (401)",
    "forbidden": "no access to the tracing project (403)",
    "not_found": "wrong path (404)",
    "too_large": "request too large (413)",
    "rate_limited": "rate limited (429)",
    "server_error": "server error (5xx)",
    "http_error": "refused by the server",
    "error": "could not send",
    "no_destination": "no destination",
    "config_error": "configuration error",
}


@dataclass
class DoctorReport:
    """What ``doctor`` found: settings in force, environment notes and the probe's verdict."""

    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    code: str = "error"
    message: str = ""
    action: str = ""
    status: int | None = None
    url: str | None = None
    elapsed_ms: float | None = None
    # Like status(): failed attempts before the verdict, the last error, when it cleared.
    retries: int = 0
    last_error: str | None = None
    cleared_after_ms: float | None = None

    @property
    def ok(self) -> bool:
        """True only when the probe span was accepted."""
        return self.code == "accepted"

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "ok": self.ok,
            "verdict": self.code,
            "title": TITLES.get(self.code, self.code),
            "message": self.message,
            "action": self.action,
            "status": self.status,
            "url": self.url,
            "elapsed_ms": self.elapsed_ms,
            "retries": self.retries,
            "last_error": self.last_error,
            "cleared_after_ms": self.cleared_after_ms,
            "settings": self.settings,
            "notes": self.notes,
        }


def _source(settings: Settings, option: str) -> str:
    src = settings.sources.get(option, "default")
    return {"argument": "command line"}.get(src, src)


def _describe(settings: Settings) -> dict[str, Any]:
    def item(value: Any, option: str) -> dict[str, Any]:
        return {"value": value, "source": _source(settings, option)}

    return {
        "destination": {
            "value": settings.destination,
            "source": _source(settings, "endpoint" if settings.endpoint else "host"),
        },
        "traces_url": item(settings.traces_url, "endpoint" if settings.endpoint else "host"),
        "app_name": item(settings.app_name, "app_name"),
        "tracing_project": item(settings.tracing_project, "tracing_project"),
        "api_key": item(mask_secret(settings.api_key) if settings.api_key else None, "api_key"),
        "headers": {
            "value": sorted(settings.export_headers()),
            "source": "api_key, tracing_project"
            + (f", {_source(settings, 'headers')}" if settings.headers else ""),
        },
        "timeout": item(settings.timeout, "timeout"),
    }


def ca_notes(env: Mapping[str, str]) -> list[str]:
    """Warnings about CA-bundle variables that change which servers ``requests`` trusts.

    Example:
        >>> ca_notes({})
        []
    """
    notes: list[str] = []
    requests_ca = env.get("REQUESTS_CA_BUNDLE", "").strip()
    curl_ca = env.get("CURL_CA_BUNDLE", "").strip()
    in_force, name = (
        (requests_ca, "REQUESTS_CA_BUNDLE") if requests_ca else (curl_ca, "CURL_CA_BUNDLE")
    )
    if not in_force:
        return notes
    notes.append(
        f"{name}={in_force} is set: the exporter (requests) trusts only the certificate "
        "authorities in that file, replacing certifi's list and any CA configured elsewhere "
        "(SSL_CERT_FILE, an OS trust store). If your TrueFoundry uses a private CA, add it to "
        f"that file or point {name} at a bundle that contains it."
    )
    if requests_ca and curl_ca and requests_ca != curl_ca:
        notes.append(f"CURL_CA_BUNDLE={curl_ca} is ignored because REQUESTS_CA_BUNDLE wins.")
    ssl_file = env.get("SSL_CERT_FILE", "").strip()
    if ssl_file and ssl_file != in_force:
        notes.append(f"SSL_CERT_FILE={ssl_file} is ignored by the exporter because {name} is set.")
    if not os.path.exists(in_force):
        notes.append(f"{name} names a file that does not exist: every TLS connection will fail.")
    return notes


def _probe_body(settings: Settings) -> bytes:
    """One real span, encoded by OpenTelemetry's own OTLP encoder."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider(
        resource=Resource.create(
            {**settings.resource_attributes, "service.name": settings.app_name}
        )
    )
    tracer = provider.get_tracer("truefoundry_tracing.doctor")
    span = tracer.start_span(
        "truefoundry-tracing doctor probe",
        attributes={"truefoundry_tracing.doctor": True},
    )
    span.end()
    body: bytes = encode_spans([span]).SerializeToString()  # type: ignore[list-item]
    provider.shutdown()
    return body


def run_doctor(
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    **arguments: Any,
) -> DoctorReport:
    """Resolve the configuration, send one probe span, and return the report.

    ``arguments`` are ``init()`` arguments given on the command line. Never raises for a bad
    configuration or a failed probe: both are verdicts.

    Example:
        >>> report = run_doctor(env={})
        >>> report.code, report.ok
        ('no_destination', False)
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    report = DoctorReport()
    report.notes.extend(ca_notes(environ))
    # libraries whose model calls no instrumentation sees (the same sentences init() warns)
    report.notes.extend(f"{name} is not traced: {why}" for name, _, why in untraced())
    try:
        settings = resolve(env=environ, **{k: v for k, v in arguments.items() if v is not None})
    except ConfigError as err:
        report.code, report.message = "config_error", str(err)
        report.action = _as_flags(getattr(err, "fix", ""), arguments) or (
            "Fix the setting this message names; init() raises the same error until it is fixed."
        )
        return report
    report.settings = _describe(settings)
    report.notes.extend(settings.warnings)
    url = report.url = settings.traces_url
    if settings.errors or url is None:
        return _without_probe(report, settings)
    if settings.destination == "truefoundry":
        if not settings.api_key:
            report.notes.append("no API key is set (TFY_API_KEY): TrueFoundry will answer 401.")
        if not settings.tracing_project:
            report.notes.append(
                "no tracing project is set (TFY_TRACING_PROJECT): spans carry no "
                "TFY-Tracing-Project header."
            )
    limit = min(settings.timeout, timeout if timeout is not None else DEFAULT_PROBE_TIMEOUT)
    hints = dataclasses.replace(
        Hints.for_settings(settings, url, lambda option: f"--{option.replace('_', '-')}"),
        timeout=limit,
        timeout_source="--timeout (TFY_TRACING_TIMEOUT caps it)",
    )
    import requests

    body = _probe_body(settings)
    started = time.monotonic()
    with requests.Session() as session:
        tries: Attempts = post_retrying(session, url, body, settings.export_headers(), limit, hints)
    verdict: Verdict = tries.verdict
    report.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    _record_retries(report, tries)
    report.code, report.status = verdict.code, verdict.status
    if verdict.code == "not_found":
        verdict = _find_path(settings, body, limit, hints, verdict)
    if verdict.ok:
        # The collector's "spans accepted" is the probe's success; say where to look next.
        look = settings.destination == "truefoundry" and settings.tracing_project
        verdict = dataclasses.replace(
            verdict,
            problem=f"{verdict.status} from {url}: the probe span was accepted.",
            action=f"Look for app '{settings.app_name}' in TrueFoundry's tracing project "
            f"{settings.tracing_project}."
            if look
            else "",
        )
    report.action = verdict.action
    report.message = verdict.advice
    return report


def _without_probe(report: DoctorReport, settings: Settings) -> DoctorReport:
    """The verdict when no probe can be sent: a bad variable set aside, or no destination."""
    if settings.errors:
        first = settings.errors[0]
        report.code = "config_error"
        report.message = " ".join(problem.message for problem in settings.errors)
        report.action = first.fix or (
            f"Fix {first.source} as the message says, or unset it; init() logs the same error "
            "and traces without that value until then."
        )
        return report
    report.code = "no_destination"
    report.action = (
        "Set TFY_HOST to your TrueFoundry control-plane URL and TFY_API_KEY to an API key, "
        "or TFY_TRACING_ENDPOINT for another OTLP/HTTP collector."
    )
    report.message = (
        "no destination is configured, so init() keeps traces on this machine "
        f"(printed as trees when console is on). {report.action}"
    )
    return report


def _as_flags(fix: str, arguments: Mapping[str, Any]) -> str:
    """A fix naming an argument given on the command line, worded with its flag."""
    for name in arguments:
        if fix.startswith(f"Set {name} to "):
            return f"Set --{name.replace('_', '-')} to " + fix.removeprefix(f"Set {name} to ")
    return fix


def _find_path(
    settings: Settings, body: bytes, limit: float, hints: Hints, verdict: Verdict
) -> Verdict:
    """After a 404, probe the paths that would fix it; name the value of the one accepted."""
    import requests

    with requests.Session() as session:
        for url, value in candidates(settings):
            tried = post(session, url, body, settings.export_headers(), limit, hints)
            if tried.ok:
                return dataclasses.replace(
                    verdict,
                    action=f"Set {hints.host_source} to {value}: the collector accepted the "
                    f"probe span at {url}.",
                )
    return verdict


def _record_retries(report: DoctorReport, tries: Attempts) -> None:
    report.retries = tries.retries
    if tries.failures:
        report.last_error = tries.failures[-1].advice
    if tries.cleared_after is not None:
        report.cleared_after_ms = round(tries.cleared_after * 1000, 1)


def _retry_line(report: DoctorReport) -> str | None:
    """What status() would show: the failed attempts, the last error and when it cleared."""
    if not report.retries:
        return None
    cleared = (
        f"; cleared after {report.cleared_after_ms:g} ms"
        if report.cleared_after_ms is not None
        else ""
    )
    return f"  after {report.retries} failed attempt(s){cleared}; last error: {report.last_error}"


def format_report(report: DoctorReport) -> str:
    """The human-readable report ``doctor`` prints."""
    lines = ["Configuration (as init() resolves it):"]
    labels = {
        "destination": "destination",
        "traces_url": "traces URL",
        "app_name": "app",
        "tracing_project": "tracing project",
        "api_key": "API key",
        "headers": "headers sent",
        "timeout": "timeout (s)",
    }
    for key, label in labels.items():
        item = report.settings.get(key)
        if item is None:
            continue
        value = item["value"]
        shown = ", ".join(value) if isinstance(value, list) else value
        lines.append(
            f"  {label:<16} {shown if shown not in (None, '') else '-'}  [{item['source']}]"
        )
    for note in report.notes:
        lines.append(f"note: {note}")
    mark = "OK" if report.ok else "FAIL"
    timing = f" in {report.elapsed_ms:g} ms" if report.elapsed_ms is not None else ""
    lines.append(f"Probe: {mark}: {TITLES.get(report.code, report.code)}{timing}")
    lines.append(f"  {report.message}")
    retried = _retry_line(report)
    if retried:
        lines.append(retried)
    return "\n".join(lines) + "\n"


def print_report(report: DoctorReport, out: IO[str], *, as_json: bool) -> None:
    """Write the report as text or as one JSON document."""
    if as_json:
        out.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(format_report(report))
