"""Where traceloop's instrumentations fall short of one right trace per run: the libraries'
own telemetry switched off (:mod:`._offline`), calls recorded twice reduced to one span
(:mod:`._dedupe`), and model calls nothing can see reported (:mod:`._gaps`); and the
instrumentations this library ships for frameworks traceloop does not instrument
(:mod:`._smolagents`, :mod:`._dspy`, :mod:`._autogen`, :mod:`._ag2`, on :mod:`._own` and
:mod:`._spans`)."""
