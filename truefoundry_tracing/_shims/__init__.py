"""Small, version-gated fixes to traceloop's instrumentations, one module per fix.

Each module has an ``apply()`` that is idempotent, never raises, and does nothing on the
instrumentation versions it does not fix. ``_instruments`` calls it right after it applies the
instrumentation concerned.
"""

from __future__ import annotations

__all__: list[str] = []
