"""Settings: the options table, its parsers, and the one resolver that applies them.

``init()``, ``doctor``, the gateway helpers and the configuration reference all read settings
from here; nothing else parses a setting. See :mod:`._options` (the table), :mod:`._parsers`
(single values, and the one :func:`is_loopback`), :mod:`._resolve` (precedence and sources)
and :mod:`._advice` (the fix for a collector's 404, per setting).

Example:
    >>> from truefoundry_tracing._config import resolve
    >>> resolve(env={"TFY_HOST": "https://tfy.example.com/"}).host
    'https://tfy.example.com'
"""

from __future__ import annotations

from ._model import DEFAULT_TIMEOUT, Problem, Settings, is_secret_header, mask_secret
from ._options import OPTION_BY_NAME, OPTIONS, Option
from ._parsers import (
    AUTH_HEADER,
    PROJECT_HEADER,
    TRACES_SUFFIX,
    TRUEFOUNDRY_PATH,
    SettingError,
    check_header_value,
    check_url,
    is_loopback,
    parse_traceloop_headers,
    safe_url,
)
from ._resolve import resolve

__all__ = [
    "AUTH_HEADER",
    "DEFAULT_TIMEOUT",
    "OPTIONS",
    "OPTION_BY_NAME",
    "PROJECT_HEADER",
    "TRACES_SUFFIX",
    "TRUEFOUNDRY_PATH",
    "Option",
    "Problem",
    "SettingError",
    "Settings",
    "check_header_value",
    "check_url",
    "is_loopback",
    "is_secret_header",
    "mask_secret",
    "parse_traceloop_headers",
    "resolve",
    "safe_url",
]
