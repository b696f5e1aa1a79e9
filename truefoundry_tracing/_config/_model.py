"""The resolved configuration: one frozen :class:`Settings`, and how secrets are masked in it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._parsers import AUTH_HEADER, PROJECT_HEADER, TRACES_SUFFIX, TRUEFOUNDRY_PATH

__all__ = ["DEFAULT_TIMEOUT", "Problem", "Settings", "is_secret_header", "mask_secret"]

DEFAULT_TIMEOUT = 5.0
_SECRET_HEADER = re.compile(r"(authorization|api[-_]?key|token|secret|cookie|password)", re.I)


def mask_secret(value: str | None) -> str:
    """Mask a secret to its last 4 characters (``'…abcd'``); short ones are fully hidden.

    Example:
        >>> mask_secret("tfy-secret-1234")
        '…1234'
    """
    if not value:
        return "<none>"
    if len(value) < 12:
        return "…" + "*" * 4
    return "…" + value[-4:]


def is_secret_header(name: str) -> bool:
    """True for header names whose values must be masked (``Authorization``, ``X-Api-Key``...).

    Example:
        >>> is_secret_header("X-Api-Key"), is_secret_header("X-Team")
        (True, False)
    """
    return bool(_SECRET_HEADER.search(name))


@dataclass(frozen=True)
class Problem:
    """A bad value read from the environment: ``init()`` logs it and goes on without it.

    ``message`` names the variable, what is wrong, the fix and what tracing does meanwhile;
    ``fix`` is the action alone, when one can be given (``doctor`` prints it).

    Example:
        >>> p = Problem("sample_rate", "TFY_TRACING_SAMPLE_RATE", "TFY_TRACING_SAMPLE_RATE ...")
        >>> str(p) == p.message
        True
    """

    option: str
    source: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Settings:
    """What ``init()`` will do, resolved from arguments and environment.

    ``sources`` maps each option name to where its value came from: ``"argument"``, the name
    of an environment variable, or ``"default"``. ``errors`` lists the bad values read from the
    environment that were set aside (see :class:`Problem`). ``repr()`` masks the API key.

    Example:
        >>> from truefoundry_tracing._config import resolve
        >>> s = resolve(host="https://tfy.example.com/", api_key="tfy-secret-abcd", env={})
        >>> s.traces_url
        'https://tfy.example.com/api/otel/v1/traces'
        >>> "tfy-secret" in repr(s)
        False
    """

    app_name: str
    host: str | None = None
    endpoint: str | None = None
    api_key: str | None = field(default=None, repr=False)
    tracing_project: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    disable_batch: bool = False
    trace_content: bool = True
    sample_rate: float = 1.0
    console: bool = False
    exporter: Any = None
    instruments: tuple[str, ...] | None = None
    resource_attributes: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    redact: Any = None
    allow_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    handle_sigterm: bool = True
    strict: bool = False
    sources: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    errors: tuple[Problem, ...] = ()

    @property
    def traces_url(self) -> str | None:
        """The URL spans are POSTed to, or None when nothing goes over the network."""
        if self.exporter is not None or not self.enabled:
            return None
        if self.endpoint:
            return self.endpoint
        if self.host:
            return self.host + TRUEFOUNDRY_PATH + TRACES_SUFFIX
        return None

    @property
    def destination(self) -> str:
        """One of ``"truefoundry"``, ``"otlp"``, ``"exporter"``, ``"console"``, ``"none"``."""
        if not self.enabled:
            return "none"
        if self.exporter is not None:
            return "exporter"
        if self.endpoint:
            return "otlp"
        if self.host:
            return "truefoundry"
        return "console" if self.console else "none"

    @property
    def destination_option(self) -> str:
        """The option that decides the traces URL: ``"endpoint"`` when set, else ``"host"``."""
        return "endpoint" if self.endpoint else "host"

    def source_label(self, option: str, argument: str | None = None) -> str:
        """Where ``option`` came from, for messages: a variable's name, the argument, or default.

        ``argument`` names the argument the caller's way (``--host`` for the CLI); by default
        it reads "the host argument".
        """
        src = self.sources.get(option, "default")
        if src == "argument":
            return argument or f"the {option} argument"
        return f"the {option} setting" if src == "default" else src

    def export_headers(self) -> dict[str, str]:
        """The HTTP headers sent with every export, including the key (never log these)."""
        out = dict(self.headers)
        if self.api_key:
            out[AUTH_HEADER] = f"Bearer {self.api_key}"
        if self.tracing_project:
            out[PROJECT_HEADER] = self.tracing_project
        return out

    def masked_headers(self) -> dict[str, str]:
        """Export headers with secret values masked, safe to print."""
        out: dict[str, str] = {}
        for key, value in self.export_headers().items():
            if is_secret_header(key):
                scheme, _, token = value.partition(" ")
                out[key] = f"{scheme} {mask_secret(token)}" if token else mask_secret(value)
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        parts = [
            f"destination={self.destination!r}",
            f"traces_url={self.traces_url!r}",
            f"app_name={self.app_name!r}",
            f"tracing_project={self.tracing_project!r}",
            f"api_key={mask_secret(self.api_key) if self.api_key else None!r}",
            f"headers={sorted(self.export_headers())!r}",
            f"batch={not self.disable_batch!r}",
            f"trace_content={self.trace_content!r}",
            f"sample_rate={self.sample_rate!r}",
        ]
        if self.errors:
            parts.append(f"errors={len(self.errors)}")
        return f"Settings({', '.join(parts)})"

    def identity(self) -> tuple[Any, ...]:
        """A value that is equal for two settings that configure the same pipeline."""
        return (
            self.app_name,
            self.traces_url,
            tuple(sorted(self.export_headers().items())),
            self.disable_batch,
            self.trace_content,
            self.sample_rate,
            self.console,
            id(self.exporter) if self.exporter is not None else None,
            self.instruments,
            tuple(sorted((k, repr(v)) for k, v in self.resource_attributes.items())),
            self.enabled,
            id(self.redact) if callable(self.redact) else self.redact,
            self.timeout,
        )
