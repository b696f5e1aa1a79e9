"""Private: the one HTTP core and the servers built on it.

- :mod:`._httpd`: sockets, threads and HTTP/1.1 framing (``h11``), the body-size limit policy.
- :mod:`._otlp_decode`: OTLP/HTTP export bodies (protobuf or JSON, compressed or not) to spans.
- :mod:`._receiver`: :class:`OTLPReceiver`, the local OTLP/HTTP endpoint used by the tests, the
  ``tfy_otlp_receiver`` fixture, ``truefoundry-tracing serve`` and the benchmarks.

The LLM stand-ins (:mod:`truefoundry_tracing.testing`) run on the same core. Users import
``OTLPReceiver`` from ``truefoundry_tracing.testing``; ``cli`` imports from here.
"""
