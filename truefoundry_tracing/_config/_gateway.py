"""Where the AI gateway is and which key it gets: the settings ``gateway.py`` reads.

Example:
    >>> gateway_target("https://tfy.example.com/api/llm/", "tfy-key", lambda: None, env={})
    ('https://tfy.example.com/api/llm', 'tfy-key')
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping

from .._errors import ConfigError
from ._model import Settings
from ._parsers import AUTH_HEADER, check_header_value, check_url, is_loopback

__all__ = ["GATEWAY_PATH", "GATEWAY_URL_ENV", "gateway_target"]

#: Environment variable naming the gateway's OpenAI-compatible base URL.
GATEWAY_URL_ENV = "TFY_GATEWAY_URL"
#: Path of the gateway's OpenAI-compatible API under the control-plane URL.
GATEWAY_PATH = "/api/llm"


def gateway_target(
    base_url: str | None,
    api_key: str | None,
    settings: Callable[[], Settings | None],
    env: Mapping[str, str],
) -> tuple[str, str]:
    """The gateway URL and key: arguments, then ``TFY_GATEWAY_URL``, then init()'s settings.

    ``settings()`` returns the settings in force (called only when needed). Raises
    :class:`~truefoundry_tracing.ConfigError` when no URL or key is found or one is invalid:
    asking for a gateway client is explicit, so there is nothing to fall back to.
    """
    cached: list[Settings] = []

    def current() -> Settings:
        if not cached:
            found = settings()
            if found is None:
                from ._resolve import resolve

                found = resolve(env=env)
            cached.append(found)
        return cached[0]

    url = _url(base_url, env, current)
    key = api_key.strip() if api_key is not None else ""
    key_source = "the api_key argument"
    if not key:
        key = current().api_key or ""
        key_source = current().sources.get("api_key", "TFY_API_KEY")
    if not key:
        raise ConfigError(
            "no API key for the gateway; pass api_key=..., or set TFY_API_KEY to a TrueFoundry "
            "API key (Settings > API keys in TrueFoundry)."
        )
    check_header_value(AUTH_HEADER, key, key_source)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not current().allow_insecure:
        raise ConfigError(
            f"refusing to send the API key over plain http to {parts.hostname}: anyone on "
            "the network could read it. Use an https:// gateway URL, or set "
            "TFY_TRACING_ALLOW_INSECURE=true if the network is trusted."
        )
    return url, key


def _url(base_url: str | None, env: Mapping[str, str], current: Callable[[], Settings]) -> str:
    if base_url is not None:
        return check_url(base_url, "base_url").rstrip("/")
    from_env = env.get(GATEWAY_URL_ENV, "")
    if from_env.strip():
        return check_url(from_env, GATEWAY_URL_ENV).rstrip("/")
    settings = current()
    if not settings.host:
        bad = next((p for p in settings.errors if p.option == "host"), None)
        if bad is not None:
            raise ConfigError(f"the gateway's URL comes from {bad.source}, which is invalid: {bad}")
        raise ConfigError(
            "the gateway's URL is not set; pass base_url=..., set TFY_GATEWAY_URL to "
            "its OpenAI-compatible URL, or set TFY_HOST to your TrueFoundry "
            "control-plane URL (the gateway is then <TFY_HOST>/api/llm)."
        )
    source = settings.sources.get("host", "host")
    source = "the host argument of init()" if source == "argument" else source
    return check_url(settings.host + GATEWAY_PATH, source).rstrip("/")
