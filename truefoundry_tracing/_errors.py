"""The library's exceptions.

All derive from one root, so ``except TracingError`` catches anything this library raises::

    TracingError
    ├── ConfigError (also a ValueError)   bad argument or environment variable, raised by init()
    └── MissingDependencyError (also an ImportError)   an optional package is not installed

Failures while exporting spans are never raised into the application: they are logged
once per cause and counted on the status object that :func:`truefoundry_tracing.init` returns.
"""

from __future__ import annotations

__all__ = ["ConfigError", "MissingDependencyError", "TracingError"]


class TracingError(Exception):
    """Root of every exception raised by ``truefoundry_tracing``.

    Example:
        >>> issubclass(ConfigError, TracingError)
        True
    """


class ConfigError(TracingError, ValueError):
    """A setting is invalid; the message names the setting and how to fix it.

    Raised by :func:`truefoundry_tracing.init` (and the CLI) before anything is changed, so a
    failed ``init()`` leaves the previous configuration in force. Messages never contain an
    API key.

    Example:
        >>> import truefoundry_tracing as tt
        >>> try:
        ...     tt.init(host="example.com")
        ... except tt.ConfigError as exc:
        ...     print(str(exc).split(";")[0])
        host 'example.com' has no scheme
    """


class MissingDependencyError(TracingError, ImportError):
    """An optional package a helper needs is not installed; the message names the extra.

    Example:
        >>> print(MissingDependencyError("openai", "openai"))  # doctest: +NORMALIZE_WHITESPACE
        this helper needs the 'openai' package;
        install it with: pip install 'truefoundry-tracing[openai]'
    """

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"this helper needs the {package!r} package; install it with: "
            f"pip install 'truefoundry-tracing[{extra}]'"
        )
        self.package = package
        self.extra = extra
