"""The fix for a collector's 404, worded for the setting the traces URL came from.

A 404 means the URL has the wrong path, and the right value depends on the setting: a
TrueFoundry host is the control-plane URL alone; ``TRACELOOP_BASE_URL`` is that URL followed
by ``/api/otel``; a generic endpoint is the full OTLP traces URL of its collector.
:func:`candidates` lists the URLs worth trying with the value to set for each (``doctor``
probes them); :func:`not_found_fix` words the fix (the exporter's warning and ``doctor``).

Example:
    >>> from truefoundry_tracing._config import resolve
    >>> s = resolve(env={"TRACELOOP_BASE_URL": "https://tfy.example.com"})
    >>> not_found_fix(s, "TRACELOOP_BASE_URL").split(":")[0]
    'Set TRACELOOP_BASE_URL to https'
    >>> candidates(s)[0]
    ('https://tfy.example.com/api/otel/v1/traces', 'https://tfy.example.com/api/otel')
"""

from __future__ import annotations

import urllib.parse

from ._model import Settings
from ._parsers import TRACES_SUFFIX, TRUEFOUNDRY_PATH

__all__ = ["candidates", "not_found_fix"]

BASE_URL = "TRACELOOP_BASE_URL"


def _origin(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:  # never repeat credentials in advice
        return None
    return f"{parts.scheme}://{parts.netloc}"


def candidates(settings: Settings) -> list[tuple[str, str]]:
    """``(traces URL, value to set)`` pairs that fix a 404, most likely first.

    Only the origin of the current URL is used (scheme, host and port): a wrong path is what a
    404 says. Empty when no other URL is worth trying.
    """
    url = settings.traces_url
    option = settings.destination_option
    value = settings.host if option == "host" else settings.endpoint
    origin = _origin(value) if value else None
    if url is None or origin is None:
        return []
    tfy, plain = origin + TRUEFOUNDRY_PATH + TRACES_SUFFIX, origin + TRACES_SUFFIX
    from_base_url = settings.sources.get(option) == BASE_URL
    if option == "host":
        found = [(tfy, origin + TRUEFOUNDRY_PATH if from_base_url else origin)]
    elif from_base_url:
        found = [(tfy, origin + TRUEFOUNDRY_PATH), (plain, origin)]
    else:
        found = [(tfy, tfy), (plain, plain)]
    return [(try_url, fix) for try_url, fix in found if try_url != url]


def not_found_fix(settings: Settings, label: str) -> str:
    """The action for a 404, naming ``label`` (where the URL came from, as the caller says it).

    Every value suggested here, applied, sends to a different path; none repeats the current
    one, so following the advice never loops.
    """
    found = candidates(settings)
    option = settings.destination_option
    from_base_url = settings.sources.get(option) == BASE_URL
    if option == "host":
        what = "<control-plane-url>/api/otel" if from_base_url else "the control-plane URL alone"
        if found:
            return f"Set {label} to {found[0][1]}: it takes {what}, without another path."
        return (
            f"Check that {label} is {what}, where the control-plane URL is the address of "
            "TrueFoundry's web UI (such as https://your-company.truefoundry.cloud)."
        )
    if from_base_url and found:
        return (
            f"Set {label} to {found[0][1]}: for TrueFoundry it takes "
            "<control-plane-url>/api/otel; for another collector, its OTLP/HTTP base URL "
            "(/v1/traces is appended)."
        )
    return (
        f"Set {label} to the full OTLP/HTTP traces URL of that collector, as its documentation "
        "gives it (used as given when it ends in /v1/traces); to send to TrueFoundry instead, "
        "set TFY_HOST to the control-plane URL."
    )
