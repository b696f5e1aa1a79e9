"""No silent gaps: libraries that call models where no instrumentation can see the calls.

* **DSPy 3.x** is no longer one: its own HTTP engine (``engine="auto"``, its bundled
  ``lm15``), which neither the OpenAI nor the LiteLLM instrumentation sees, has its model calls
  recorded by this library's DSPy instrumentation (``_dspy``).
* **New majors an instrumentation does not support** (google-genai under traceloop-sdk 0.38,
  whose instrumentation needs the old google-generativeai; reported at ``init()`` and by
  ``doctor`` before the app imports it): the failure in the report names the versions that
  work. haystack-ai 3, on which traceloop's instrumentation fails, is no longer one: this
  library's Haystack instrumentation (``_haystack``) records Haystack 3's own tracing.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["failure_hint", "untraced"]

# instrumentation name -> (distribution, first major it fails on, fix)
_FAILING_MAJORS: dict[str, tuple[str, int, str]] = {
    # traceloop 0.38's instrumentation wraps only the old google-generativeai SDK
    "google_generativeai": (
        "google-genai",
        1,
        "install traceloop-sdk 0.45.6 or newer (0.62.4 is tested) to trace google-genai: this "
        "one's instrumentation wraps only the old google-generativeai SDK",
    ),
}


def _major(version: str | None) -> int:
    try:
        return int((version or "0").split(".")[0])
    except ValueError:
        return 0


def failure_hint(name: str, version: str | None) -> str:
    """The fix for an instrumentation known to fail on this major version, or ``""``.

    Example:
        >>> failure_hint("google_generativeai", "1.52.0")[:31]
        ' Install traceloop-sdk 0.45.6 o'
        >>> failure_hint("haystack", "3.4.1")
        ''
    """
    known = _FAILING_MAJORS.get(name)
    if known is None or _major(version) < known[1]:
        return ""
    fix = known[2]
    return f" {fix[0].upper()}{fix[1:]}."


def untraced(
    version: Callable[[str], str | None] | None = None,
) -> list[tuple[str, str, str]]:
    """(library, version, sentence with the fix) for each installed library whose model calls
    no instrumentation sees. ``version(dist)`` finds an installed distribution's version
    (default: ``importlib.metadata``; ``init()`` passes its cached directory scan).

    Example:
        >>> all(len(gap) == 3 for gap in untraced())
        True
    """
    return _google_genai_gap(version or _metadata_version)


# The first opentelemetry-instrumentation-google-generativeai that wraps google-genai.
_GENAI_SINCE = (0, 45, 6)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version)[:3])


def _google_genai_gap(find: Callable[[str], str | None]) -> list[tuple[str, str, str]]:
    """google-genai under a traceloop-sdk whose instrumentation knows only the old SDK: said at
    ``init()`` and by ``doctor``, not only once the app imports it."""
    genai = find("google-genai") or ""
    inst = find("opentelemetry-instrumentation-google-generativeai") or ""
    if not genai or not inst or _release(inst) >= _GENAI_SINCE:
        return []
    return [
        (
            "google-genai",
            genai,
            f"google-genai {genai} is not traced: opentelemetry-instrumentation-google-"
            f"generativeai {inst} instruments only the old google-generativeai SDK. Install "
            "traceloop-sdk 0.45.6 or newer (0.62.4 is tested) to trace it.",
        )
    ]


def _metadata_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
