"""No silent gaps: libraries that call models where no instrumentation can see the calls.

* **DSPy 3.x**: ``dspy.LM`` picks its own HTTP engine by default (``engine="auto"``, its
  bundled ``lm15``), so neither the OpenAI nor the LiteLLM instrumentation sees its calls and
  nothing says so. ``engine="litellm"`` sends them through LiteLLM, which ``init()`` traces.
* **New majors traceloop's instrumentation fails on** (mcp 2, haystack-ai 3), or that it does
  not support (google-genai under traceloop-sdk 0.38, whose instrumentation needs the old
  google-generativeai): the failure in the report names the versions that work.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["failure_hint", "untraced"]

# instrumentation name -> (distribution, first major it fails on, fix)
_FAILING_MAJORS: dict[str, tuple[str, int, str]] = {
    "mcp": (
        "mcp",
        2,
        "install 'mcp<2' to trace MCP sessions and tool calls (the OpenAI Agents SDK runs "
        "with mcp 1.x too)",
    ),
    "haystack": ("haystack-ai", 3, "install 'haystack-ai<3' to trace Haystack pipelines"),
    # traceloop 0.38's instrumentation wraps only the old google-generativeai SDK
    "google_generativeai": (
        "google-genai",
        1,
        "install traceloop-sdk 0.62 (tested) to trace google-genai: this one's instrumentation "
        "wraps only the old google-generativeai SDK",
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
        >>> failure_hint("mcp", "2.3.0")[:20]
        " Install 'mcp<2' to "
        >>> failure_hint("mcp", "1.30.0")
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
    find = version or _metadata_version
    gaps: list[tuple[str, str, str]] = []
    dspy = find("dspy") or find("dspy-ai") or ""
    if _major(dspy) >= 3:
        gaps.append(
            (
                "dspy",
                dspy,
                f"DSPy {dspy} calls models through its own HTTP engine by default, which no "
                "instrumentation sees: those calls are not traced. Create the model with "
                "dspy.LM(..., engine='litellm') (LiteLLM is traced by init()) to trace them.",
            )
        )
    return gaps


def _metadata_version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
