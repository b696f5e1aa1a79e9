"""``truefoundry-tracing doctor`` against the project's OTLPReceiver playing each failure."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from truefoundry_tracing.cli import main
from truefoundry_tracing.cli._doctor import TITLES
from truefoundry_tracing.testing import OTLPReceiver

KEY = "tfy-doctor-secret-key-7f3a"
PROJECT = "tenant:tracing-project:doctor"
TFY_PATH = "/api/otel/v1/traces"
CLI_PAGE = (Path(__file__).parents[2] / "docs" / "cli.md").read_text("utf-8")


def doctor(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["doctor", *args], out=out)
    text = out.getvalue()
    assert KEY not in text
    return code, text


def doctor_json(*args: str) -> tuple[int, dict[str, Any]]:
    code, text = doctor("--json", *args)
    return code, json.loads(text)


@pytest.fixture
def configured(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> OTLPReceiver:
    monkeypatch.setenv("TFY_HOST", receiver.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    monkeypatch.setenv("TFY_TRACING_PROJECT", PROJECT)
    monkeypatch.setenv("TFY_TRACING_APP", "doctor-app")
    return receiver


def test_accepted_prints_settings_with_sources_and_sends_a_real_span(
    configured: OTLPReceiver,
) -> None:
    code, text = doctor()
    assert code == 0
    assert "Probe: OK: accepted" in text
    assert f"traces URL       {configured.url}{TFY_PATH}  [TFY_HOST]" in text
    assert "app              doctor-app  [TFY_TRACING_APP]" in text
    assert f"tracing project  {PROJECT}  [TFY_TRACING_PROJECT]" in text
    assert f"API key          …{KEY[-4:]}  [TFY_API_KEY]" in text
    assert "Look for app 'doctor-app'" in text

    (request,) = configured.requests
    assert request.path == TFY_PATH
    assert request.content_type == "application/x-protobuf"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["tfy-tracing-project"] == PROJECT
    (span,) = request.spans
    assert span.name == "truefoundry-tracing doctor probe"
    assert span.service_name == "doctor-app"


def test_json_document(configured: OTLPReceiver) -> None:
    code, doc = doctor_json()
    assert code == 0
    assert doc["ok"] is True
    assert (doc["verdict"], doc["status"]) == ("accepted", 200)
    assert doc["url"] == configured.url + TFY_PATH
    assert doc["settings"]["api_key"] == {"value": "…" + KEY[-4:], "source": "TFY_API_KEY"}
    assert doc["settings"]["destination"]["value"] == "truefoundry"
    assert doc["action"] == f"Look for app 'doctor-app' in TrueFoundry's tracing project {PROJECT}."
    assert doc["message"].endswith(doc["action"])


@pytest.mark.parametrize(
    ("status", "verdict", "words"),
    [
        (401, "unauthorized", ["key rejected (401)", "Check TFY_API_KEY"]),
        (403, "forbidden", ["(403)", "Check TFY_TRACING_PROJECT"]),
        (404, "not_found", ["wrong path (404)", "/api/otel/v1/traces", "control-plane URL alone"]),
        (413, "too_large", ["(413)", "too large"]),
        (500, "server_error", ["server error (5xx)", "500 from", "administrator"]),
        (503, "server_error", ["server error (5xx)", "503 from"]),
    ],
)
def test_http_status_verdicts(
    configured: OTLPReceiver, status: int, verdict: str, words: list[str]
) -> None:
    configured.respond_with(status)
    code, text = doctor()
    assert code == 1
    assert "Probe: FAIL:" in text
    for word in words:
        assert word in text
    assert f"{configured.url}{TFY_PATH}" in text  # the URL actually used is shown
    code, doc = doctor_json()
    assert (code, doc["verdict"], doc["status"], doc["ok"]) == (1, verdict, status, False)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (401, "Check TFY_API_KEY: it must be a valid TrueFoundry API key."),
        (403, "Check TFY_TRACING_PROJECT and the key's permissions on that project."),
        (404, "Check that TFY_HOST is the control-plane URL alone, where the control-plane URL"),
        (413, "Send smaller requests with disable_batch=True"),
        (429, "If this persists, lower the sample rate (TFY_TRACING_SAMPLE_RATE)"),
        (500, "If this persists, contact your TrueFoundry administrator."),
        (503, "If this persists, contact your TrueFoundry administrator."),
    ],
)
def test_json_action_is_the_fix_and_the_message_leaves_out_the_exporters_spans(
    configured: OTLPReceiver, status: int, action: str
) -> None:
    configured.respond_with(status)
    _, doc = doctor_json()
    assert doc["action"].startswith(action)
    # What happened, then the fix: both complete sentences, and nothing about keeping or
    # dropping spans, which only the exporter does.
    problem = doc["message"].removesuffix(" " + doc["action"])
    assert problem != doc["message"]
    assert problem.startswith(f"{status} from {configured.url}{TFY_PATH}: ")
    assert problem.endswith(".")
    for word in ("kept", "retried", "dropped"):
        assert word not in doc["message"]


def test_settings_named_in_the_action_are_the_ones_in_force(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.respond_with(401, times=1)
    monkeypatch.setenv("TRACELOOP_HEADERS", f"Authorization=Bearer {KEY}")
    code, doc = doctor_json("--host", receiver.url)
    assert code == 1
    assert doc["action"] == "Check TRACELOOP_HEADERS: it must be a valid TrueFoundry API key."
    receiver.respond_with(404)
    _, doc = doctor_json("--host", receiver.url)
    assert doc["action"].startswith("Check that --host is the control-plane URL alone")


def test_404_shows_the_wrong_url_that_was_used(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user pasted the path from third-party docs; the receiver has no route there.
    monkeypatch.setenv("TFY_TRACING_ENDPOINT", receiver.url + "/api/tracing")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    code, doc = doctor_json()
    assert (code, doc["verdict"], doc["status"]) == (1, "not_found", 404)
    assert receiver.url + "/api/tracing/v1/traces" in doc["message"]
    assert "TFY_TRACING_ENDPOINT" in doc["message"]


def test_401_without_a_key_says_to_set_one(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFY_HOST", receiver.url)
    receiver.respond_with(401)
    code, text = doctor()
    assert code == 1
    assert "no API key is set" in text
    assert "Set TFY_API_KEY" in text
    assert "authorization" not in receiver.requests[0].headers


def test_hang_is_a_timeout_within_the_limit(configured: OTLPReceiver) -> None:
    configured.hang()
    started = time.monotonic()
    code, doc = doctor_json("--timeout", "1")
    assert time.monotonic() - started < 4
    assert (code, doc["verdict"], doc["ok"]) == (1, "timeout", False)
    assert "within 1 s" in doc["message"]
    assert doc["action"].endswith("raise --timeout (TFY_TRACING_TIMEOUT caps it).")
    assert configured.hanging == 1
    configured.reset_faults()


def test_closed_port_is_connection_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # held bound, never listening: refused, and no one takes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        monkeypatch.setenv("TFY_HOST", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("TFY_API_KEY", KEY)
        code, text = doctor()
        _, doc = doctor_json()
    assert code == 1
    assert "Probe: FAIL: connection refused" in text
    assert "nothing listens there" in text and "TFY_HOST" in text
    assert doc["action"] == "Check TFY_HOST and the port."
    assert "retried" not in doc["message"]


def test_unknown_host_is_a_dns_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFY_HOST", "https://no-such-host.invalid")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    code, doc = doctor_json("--timeout", "3")
    assert (code, doc["verdict"]) == (1, "dns")
    assert "cannot resolve the host" in doc["message"]
    assert doc["action"].startswith("Check TFY_HOST for a typo")


def test_self_signed_tls_is_a_tls_error_until_its_ca_is_trusted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OTLPReceiver(tls=True) as receiver:
        assert receiver.cafile is not None
        monkeypatch.setenv("TFY_HOST", receiver.url)
        monkeypatch.setenv("TFY_API_KEY", KEY)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        code, text = doctor()
        assert code == 1
        assert "Probe: FAIL: TLS error" in text
        assert "REQUESTS_CA_BUNDLE" in text  # the fix names the variable

        monkeypatch.setenv("REQUESTS_CA_BUNDLE", receiver.cafile)
        code, text = doctor()
        assert code == 0, text
        assert f"REQUESTS_CA_BUNDLE={receiver.cafile} is set" in text
        assert len(receiver.spans) == 1


def test_ca_bundle_variables_are_reported(
    configured: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "corp.pem"
    bundle.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/other.pem")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/my-ca.pem")
    _, doc = doctor_json()
    notes = " ".join(doc["notes"])
    assert f"REQUESTS_CA_BUNDLE={bundle} is set" in notes
    assert "CURL_CA_BUNDLE=/etc/other.pem is ignored" in notes
    assert "SSL_CERT_FILE=/etc/my-ca.pem is ignored" in notes

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    _, doc = doctor_json()
    assert any(n.startswith("CURL_CA_BUNDLE=/etc/other.pem is set") for n in doc["notes"])
    assert any("does not exist" in n for n in doc["notes"])


def test_same_resolver_as_init_traceloop_headers_and_arguments(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACELOOP_BASE_URL", "https://wrong.invalid/api/otel")
    monkeypatch.setenv("TRACELOOP_HEADERS", f"Authorization=Bearer {KEY}, TFY-Tracing-Project=x:y")
    code, doc = doctor_json("--host", receiver.url + "/api/otel/", "--app-name", "cli-app")
    assert code == 0
    settings = doc["settings"]
    assert settings["traces_url"] == {"value": receiver.url + TFY_PATH, "source": "command line"}
    assert settings["api_key"]["source"] == "TRACELOOP_HEADERS"
    assert settings["tracing_project"] == {"value": "x:y", "source": "TRACELOOP_HEADERS"}
    assert settings["app_name"] == {"value": "cli-app", "source": "command line"}
    assert receiver.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_no_destination_and_bad_configuration_are_not_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, text = doctor()
    assert code == 1
    assert "Probe: FAIL: no destination" in text
    assert "Set TFY_HOST" in text
    _, doc = doctor_json()
    assert doc["action"].startswith("Set TFY_HOST") and doc["message"].endswith(doc["action"])

    monkeypatch.setenv("TFY_HOST", "ftp://tfy.example.com")
    code, doc = doctor_json()
    assert (code, doc["verdict"]) == (1, "config_error")
    assert "TFY_HOST" in doc["message"] and "https://" in doc["message"]
    assert doc["action"].startswith("Fix TFY_HOST as the message says")
    assert doc["settings"]["destination"]["value"] == "none"  # what init() would do

    monkeypatch.setenv("TFY_HOST", "http://tfy.example.com")
    monkeypatch.setenv("TFY_API_KEY", KEY)
    code, doc = doctor_json()
    assert (code, doc["verdict"]) == (1, "config_error")
    assert "plain http" in doc["message"]


def test_bad_timeout_is_a_usage_error() -> None:
    assert doctor("--timeout", "0")[0] == 2


@pytest.fixture
def child_env(configured: OTLPReceiver) -> Iterator[dict[str, str]]:
    yield {**os.environ, "PYTHONIOENCODING": "utf-8"}


@pytest.mark.slow
def test_python_m_and_console_script(configured: OTLPReceiver, child_env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("truefoundry-tracing")
    for command in (
        [sys.executable, "-m", "truefoundry_tracing", "doctor", "--json"],
        [str(script), "doctor", "--json"],
    ):
        done = subprocess.run(
            command, env=child_env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["verdict"] == "accepted"
        assert KEY not in done.stdout + done.stderr
    configured.respond_with(403)
    done = subprocess.run(
        [str(script), "doctor"], env=child_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "no access to the tracing project (403)" in done.stdout
    assert "Traceback" not in done.stderr


def test_every_verdict_has_a_title_and_a_troubleshooting_section() -> None:
    page = (Path(__file__).parents[2] / "docs" / "troubleshooting.md").read_text("utf-8")
    headings = set(re.findall(r"^## (.+)$", page, flags=re.MULTILINE))
    documented = set(
        re.findall(r"`(\w+)`", CLI_PAGE.split("`verdict` is one of", 1)[1].split("\n\n")[0])
    )
    assert documented <= set(TITLES)
    assert set(TITLES) <= documented
    assert {TITLES[code] for code in TITLES} <= headings


# --------------------------------------------------------------------------------------------
# advice that fixes the problem: apply what doctor says, run it again, reach a green verdict
# --------------------------------------------------------------------------------------------

# "Set <setting> to <value>: why." or "Set <setting> to <value>." (a URL may hold ':')
FIX = re.compile(r"^Set (\S+) to (\S+?)[:.](?:\s|$)")


@pytest.fixture
def truefoundry() -> Iterator[OTLPReceiver]:
    """A local collector answering like TrueFoundry: traces only at /api/otel/v1/traces."""
    with OTLPReceiver(paths=(TFY_PATH,)) as receiver:
        yield receiver


def apply_advice(
    doc: dict[str, Any], args: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    """Do what the ``action`` of a doctor --json document says; return (setting, value)."""
    match = FIX.match(doc["action"])
    assert match, f"no value to set in the advice: {doc['action']!r}"
    setting, value = match.groups()
    if setting.startswith("--"):
        args[args.index(setting) + 1] = value
    else:
        monkeypatch.setenv(setting, value)
    return setting, value


ADVICE_CASES = [
    # (variables, command-line arguments, verdict before, setting the advice names, value)
    ({"TRACELOOP_BASE_URL": "{url}"}, [], "not_found", "TRACELOOP_BASE_URL", "{url}/api/otel"),
    (
        {"TRACELOOP_BASE_URL": "{url}/api/tracing"},
        [],
        "not_found",
        "TRACELOOP_BASE_URL",
        "{url}/api/otel",
    ),
    (
        {"TRACELOOP_BASE_URL": "{url}/tfy/api/otel"},
        [],
        "not_found",
        "TRACELOOP_BASE_URL",
        "{url}/api/otel",
    ),
    ({"TFY_HOST": "{url}/api/tracing"}, [], "not_found", "TFY_HOST", "{url}"),
    ({"TFY_BASE_URL": "{url}/tfy/"}, [], "not_found", "TFY_BASE_URL", "{url}"),
    ({}, ["--host", "{url}/tfy"], "not_found", "--host", "{url}"),
    (
        {"TFY_TRACING_ENDPOINT": "{url}"},
        [],
        "not_found",
        "TFY_TRACING_ENDPOINT",
        "{url}/api/otel/v1/traces",
    ),
    ({}, ["--endpoint", "{url}/otel"], "not_found", "--endpoint", "{url}/api/otel/v1/traces"),
    # No scheme: loopback gets http://, which the local collector speaks.
    ({"TFY_HOST": "{bare}"}, [], "config_error", "TFY_HOST", "http://{bare}"),
    (
        {"TRACELOOP_BASE_URL": "localhost:{port}/api/otel"},
        [],
        "config_error",
        "TRACELOOP_BASE_URL",
        "http://localhost:{port}/api/otel",
    ),
    ({}, ["--host", "{bare}"], "config_error", "--host", "http://{bare}"),
]


@pytest.mark.parametrize(("env", "args", "verdict", "setting", "value"), ADVICE_CASES)
def test_applying_the_advice_gives_a_green_verdict(
    truefoundry: OTLPReceiver,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    verdict: str,
    setting: str,
    value: str,
) -> None:
    url = truefoundry.url
    fill = {"url": url, "bare": url.removeprefix("http://"), "port": url.rsplit(":", 1)[1]}
    monkeypatch.setenv("TFY_API_KEY", KEY)
    for name, raw in env.items():
        monkeypatch.setenv(name, raw.format(**fill))
    argv = [arg.format(**fill) for arg in args]

    code, doc = doctor_json(*argv)
    assert (code, doc["verdict"]) == (1, verdict), doc["message"]
    assert apply_advice(doc, argv, monkeypatch) == (setting, value.format(**fill))

    code, doc = doctor_json(*argv)
    assert (code, doc["verdict"]) == (0, "accepted"), doc["message"]
    assert truefoundry.requests[-1].path == TFY_PATH


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"TRACELOOP_BASE_URL": "{url}"}, "TRACELOOP_BASE_URL"),
        ({"TFY_HOST": "{url}/api/tracing"}, "TFY_HOST"),
        ({"TFY_TRACING_ENDPOINT": "{url}/otel"}, "TFY_TRACING_ENDPOINT"),
    ],
)
def test_the_exporters_404_warning_gives_the_same_kind_of_advice(
    truefoundry: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], setting: str
) -> None:
    """What init()'s exporter says after a 404 names the setting in force and a new value."""
    import truefoundry_tracing as tt

    for name, raw in env.items():
        monkeypatch.setenv(name, raw.format(url=truefoundry.url))
    status = tt.init("advice-app", api_key=KEY, disable_batch=True, console=False)

    @tt.workflow(name="advice")
    def run() -> None:
        pass

    run()
    tt.flush(timeout=2)
    assert status.last_error is not None
    assert f"Set {setting} to " in status.last_error
    assert "control-plane URL alone (no /api/otel" not in status.last_error
    assert status.traces_url is not None
    suggested = status.last_error.split(f"Set {setting} to ", 1)[1].split(" ", 1)[0]
    assert status.traces_url.rstrip(".:") not in suggested  # never the URL that failed


def test_a_host_at_the_right_path_is_not_told_to_change_it(
    truefoundry: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 404 at <host>/api/otel/v1/traces: no value to set would fix it, so none is given."""
    monkeypatch.setenv("TFY_HOST", truefoundry.url)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    truefoundry.respond_with(404)
    code, doc = doctor_json()
    assert (code, doc["verdict"]) == (1, "not_found")
    assert doc["action"].startswith("Check that TFY_HOST is the control-plane URL alone")
    assert not FIX.match(doc["action"])


def test_a_bad_variable_is_the_same_error_init_logs_and_traces_go_nowhere(
    truefoundry: OTLPReceiver, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import truefoundry_tracing as tt

    bare = truefoundry.url.removeprefix("http://")
    monkeypatch.setenv("TFY_HOST", bare)
    monkeypatch.setenv("TFY_API_KEY", KEY)
    code, doc = doctor_json()
    assert (code, doc["verdict"]) == (1, "config_error")
    assert doc["action"] == f"Set TFY_HOST to http://{bare}."
    assert doc["settings"]["destination"]["value"] == "none"

    caplog.set_level(logging.ERROR, logger="truefoundry_tracing")
    status = tt.init("bad-env-app")  # the app runs
    assert status.destination == "none" and status.traces_url is None
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == f"truefoundry_tracing: {doc['message']}"
    assert KEY not in record.getMessage()

    monkeypatch.setenv("TFY_TRACING_STRICT", "true")
    code, doc = doctor_json()
    assert (code, doc["verdict"]) == (1, "config_error")
    assert doc["action"] == f"Set TFY_HOST to http://{bare}."
    with pytest.raises(tt.ConfigError, match="TFY_HOST"):
        tt.init("bad-env-app")
