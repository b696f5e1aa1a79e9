"""Compatibility name for :mod:`truefoundry_tracing._config`, where settings now live.

Example:
    >>> from truefoundry_tracing._settings import resolve
    >>> resolve(env={}).destination
    'console'
"""

from __future__ import annotations

from ._config import (
    AUTH_HEADER,
    DEFAULT_TIMEOUT,
    OPTIONS,
    PROJECT_HEADER,
    TRACES_SUFFIX,
    TRUEFOUNDRY_PATH,
    Option,
    Problem,
    Settings,
    mask_secret,
    parse_traceloop_headers,
    resolve,
)

__all__ = [
    "AUTH_HEADER",
    "DEFAULT_TIMEOUT",
    "OPTIONS",
    "PROJECT_HEADER",
    "TRACES_SUFFIX",
    "TRUEFOUNDRY_PATH",
    "Option",
    "Problem",
    "Settings",
    "mask_secret",
    "parse_traceloop_headers",
    "resolve",
]
