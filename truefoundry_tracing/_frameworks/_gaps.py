"""No silent gaps: libraries that call models where no instrumentation can see the calls.

* **DSPy 3.x** is no longer one: its own HTTP engine (``engine="auto"``, its bundled
  ``lm15``), which neither the OpenAI nor the LiteLLM instrumentation sees, has its model calls
  recorded by this library's DSPy instrumentation (``_dspy``).
* **New majors an instrumentation does not support** are reported with the versions that
  work (:func:`failure_hint`). None is known today: google-genai under traceloop-sdk 0.38, whose
  instrumentation wraps only the old google-generativeai, is recorded by this library's
  instrumentation (``_google_genai_calls``); haystack-ai 3, on which traceloop's
  instrumentation fails, by this library's Haystack instrumentation (``_haystack``).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["failure_hint", "untraced"]

# instrument name -> (distribution, first major it fails on, fix); none is known today
_FAILING_MAJORS: dict[str, tuple[str, int, str]] = {}


def _major(version: str | None) -> int:
    try:
        return int((version or "0").split(".")[0])
    except ValueError:
        return 0


def failure_hint(name: str, version: str | None) -> str:
    """The fix for an instrumentation known to fail on this major version, or ``""``.

    Example:
        >>> failure_hint("google_generativeai", "1.52.0")  # traced by this library's on 0.38
        ''
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
    del version  # none is known today: google-genai on traceloop-sdk 0.38 is traced by ours
    return []
