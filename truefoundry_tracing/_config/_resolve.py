"""Arguments and environment resolved, once, into :class:`~._model.Settings`.

:func:`resolve` walks the options table with one precedence rule (an explicit argument, then
each variable of the option in order, then the default; an empty variable counts as unset) and
records where each value came from. The parts that do not fit one variable per value are small
named functions: :func:`_traceloop_values` (``TRACELOOP_BASE_URL`` names a host or an endpoint,
``TRACELOOP_HEADERS`` carries the key, the project and other headers), :func:`_destination`
(which of host and endpoint wins, and the conflict warning), :func:`_check_transport` (no key
over plain http to another machine).

A bad argument raises :class:`~truefoundry_tracing.ConfigError`: that is a programmer's error.
A bad value read from the environment is set aside with a :class:`~._model.Problem` (logged
once by ``init()``) so tracing never stops the app; ``strict`` makes it raise as well.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import urllib.parse
from collections.abc import Mapping
from typing import Any

from .._errors import ConfigError
from ._model import Problem, Settings
from ._options import OPTION_BY_NAME, OPTIONS, Option
from ._parsers import (
    AUTH_HEADER,
    PROJECT_HEADER,
    TRACES_SUFFIX,
    TRUEFOUNDRY_PATH,
    SettingError,
    is_loopback,
    normalize_endpoint,
    normalize_host,
    parse_traceloop_headers,
    safe_url,
)

__all__ = ["resolve"]

BASE_URL = "TRACELOOP_BASE_URL"
HEADERS = "TRACELOOP_HEADERS"
_HOST_VARS = ("TFY_HOST", "TFY_BASE_URL")


class _Run:
    """The state of one resolution: what was read, from where, and what was set aside."""

    def __init__(self, env: Mapping[str, str], arguments: Mapping[str, Any]) -> None:
        self.env = env
        self.arguments = {k: v for k, v in arguments.items() if v is not None}
        self.strict = False
        # Values derived from the TRACELOOP_* variables that feed several options.
        self.derived: dict[tuple[str, str], Any] = {}
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def variable(self, name: str) -> str | None:
        value = self.env.get(name)
        return value if value is not None and value.strip() else None

    def pick(self, option: Option) -> None:
        """Apply the precedence to one option: argument, each variable in order, default."""
        name = option.name
        if name in self.arguments:
            self.values[name] = option.from_argument(self.arguments[name])
            self.sources[name] = "argument"
            return
        for var in option.env:
            shared = var in (BASE_URL, HEADERS)  # split by _traceloop_values
            raw = self.derived.get((name, var)) if shared else self.variable(var)
            if raw is None:
                continue
            self.sources[name] = var
            try:
                self.values[name] = option.from_variable(raw, var)
            except ConfigError as err:
                self.values[name] = self.set_aside(option, var, err)
            return
        self.values[name] = _fresh(option.value)
        self.sources[name] = "default"

    def set_aside(self, option: Option, var: str, err: ConfigError) -> Any:
        """Record a bad variable (or raise it in strict mode); return what to use instead."""
        if self.strict:
            raise err
        usable = getattr(err, "usable", None)
        then = option.if_invalid or f"the default ({option.default}) is used"
        message = f"{err} Until {var} is fixed, {then}."
        self.problems.append(Problem(option.name, var, message, getattr(err, "fix", "")))
        return usable if usable is not None else _fresh(option.value)


def _fresh(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value


def resolve(env: Mapping[str, str] | None = None, **arguments: Any) -> Settings:
    """Resolve ``init()``'s arguments and the environment into :class:`Settings`.

    ``arguments`` are ``init()``'s, by name (None means not given). A bad argument raises
    :class:`~truefoundry_tracing.ConfigError` naming it and the fix; a bad variable is set
    aside and listed in ``Settings.errors``, unless ``strict`` (``TFY_TRACING_STRICT``) is on,
    which raises for it too. Nothing is changed by calling it.

    Example:
        >>> s = resolve(env={"TFY_HOST": "https://tfy.example.com", "TFY_API_KEY": "k" * 20})
        >>> s.sources["host"], s.traces_url
        ('TFY_HOST', 'https://tfy.example.com/api/otel/v1/traces')
        >>> s = resolve(env={"TFY_HOST": "127.0.0.1:4318"})
        >>> s.destination, s.errors[0].fix
        ('none', 'Set TFY_HOST to http://127.0.0.1:4318.')
    """
    unknown = sorted(set(arguments) - set(OPTION_BY_NAME))
    if unknown:
        raise TypeError(f"resolve() got unexpected arguments: {', '.join(unknown)}")
    run = _Run(os.environ if env is None else env, arguments)
    run.pick(OPTION_BY_NAME["strict"])
    run.strict = bool(run.values["strict"])
    _traceloop_values(run)
    for option in OPTIONS:
        if option.name != "strict":
            run.pick(option)
    if run.values["app_name"] is None:
        run.values["app_name"] = _default_app_name()
    _merge_headers(run)
    _destination(run)
    _key_conflict(run)
    _console_default(run)
    settings = Settings(
        **run.values, sources=run.sources, warnings=tuple(run.notes), errors=tuple(run.problems)
    )
    return _check_transport(run, settings)


def _traceloop_values(run: _Run) -> None:
    """Split the TRACELOOP_* variables that feed several options into one value per option."""
    base = run.variable(BASE_URL)
    if base is not None:
        is_host = base.strip().rstrip("/").endswith(TRUEFOUNDRY_PATH)
        run.derived[("host" if is_host else "endpoint", BASE_URL)] = base
    raw = run.variable(HEADERS)
    if raw is None:
        return
    try:
        headers = parse_traceloop_headers(raw, HEADERS)
    except ConfigError as err:
        run.set_aside(OPTION_BY_NAME["headers"], HEADERS, err)
        return
    for key in list(headers):
        if key.lower() == AUTH_HEADER.lower():
            value = headers.pop(key)
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                run.derived[("api_key", HEADERS)] = token.strip()
            else:
                headers[AUTH_HEADER] = value
        elif key.lower() == PROJECT_HEADER.lower():
            run.derived[("tracing_project", HEADERS)] = headers.pop(key)
    if headers:
        run.derived[("headers", HEADERS)] = headers


def _merge_headers(run: _Run) -> None:
    """Extra headers given as an argument add to those of TRACELOOP_HEADERS (and win)."""
    if run.sources["headers"] == "argument":
        run.values["headers"] = {
            **run.derived.get(("headers", HEADERS), {}),
            **run.values["headers"],
        }


def _destination(run: _Run) -> None:
    """TRACELOOP_BASE_URL, the lowest of either, loses to any host; warn when they differ.

    A bad endpoint that would have won sends nothing, rather than to the host instead.
    """
    if run.sources["endpoint"] == BASE_URL and run.sources["host"] != "default":
        run.values["endpoint"] = None
        run.sources["endpoint"] = "default"
        run.problems = [p for p in run.problems if (p.option, p.source) != ("endpoint", BASE_URL)]
    if any(p.option == "endpoint" for p in run.problems):
        run.values["host"] = None
    base, source = run.variable(BASE_URL), run.sources["host"]
    host = run.values["host"]
    if base is None or source not in _HOST_VARS or host is None or "endpoint" in run.arguments:
        return
    mine = host + TRUEFOUNDRY_PATH + TRACES_SUFFIX
    try:
        if ("host", BASE_URL) in run.derived:
            theirs = normalize_host(base, BASE_URL) + TRUEFOUNDRY_PATH + TRACES_SUFFIX
        else:
            theirs = normalize_endpoint(base, BASE_URL)
    except ConfigError:
        theirs = base.strip()
    if mine != theirs:
        run.notes.append(
            f"{source} and {BASE_URL} name different destinations "
            f"({safe_url(mine)} and {safe_url(theirs)}); using {source}. "
            "Unset one of them to silence this warning."
        )


def _key_conflict(run: _Run) -> None:
    theirs = run.derived.get(("api_key", HEADERS))
    if run.sources["api_key"] == "TFY_API_KEY" and theirs and theirs != run.values["api_key"]:
        run.notes.append(
            "TFY_API_KEY and the Authorization entry of TRACELOOP_HEADERS hold different "
            "keys; using TFY_API_KEY. Remove one of them to silence this warning."
        )


def _console_default(run: _Run) -> None:
    """By default, traces are printed when they go nowhere else (and no destination was bad)."""
    if run.values["console"] is not None:  # given, or read from TFY_TRACING_CONSOLE
        return
    v = run.values
    broken = any(p.option in ("host", "endpoint") for p in run.problems)
    v["console"] = not (v["host"] or v["endpoint"] or v["exporter"] is not None or broken)


def _check_transport(run: _Run, settings: Settings) -> Settings:
    """Refuse to send the API key over plain http to a machine other than this one."""
    url = settings.traces_url
    if url is None or not settings.api_key or settings.allow_insecure:
        return settings
    hostname = urllib.parse.urlsplit(url).hostname
    if url.startswith("https://") or is_loopback(hostname):
        return settings
    option = settings.destination_option
    err = SettingError(
        f"refusing to send the API key over plain http to {hostname}: anyone on the "
        "network could read it. Use an https:// URL, or pass allow_insecure=True "
        "(TFY_TRACING_ALLOW_INSECURE=true) if the network is trusted."
    )
    source = settings.sources.get(option, "default")
    if source == "argument":
        raise err
    run.set_aside(OPTION_BY_NAME[option], source, err)
    return dataclasses.replace(settings, host=None, endpoint=None, errors=tuple(run.problems))


def _default_app_name() -> str:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv and sys.argv[0] else "")
    name = os.path.splitext(os.path.basename(path))[0] if path else ""
    if name in ("", "-c", "__main__", "pytest", "ipykernel_launcher"):
        return "python-app"
    return name
