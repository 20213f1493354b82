"""OpenTelemetry tracing across every hop: gateway -> booking service -> outbox -> Kafka -> workers.

Off by default: with no provider configured, `enabled()` is False and every helper here returns
at once (no span objects, no header parsing), so the hot paths pay one boolean check.
`configure_tracing` turns it on: OTLP over HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (needs
the `opentelemetry-exporter-otlp-proto-http` package), or any exporter passed in (tests use the
SDK's in-memory exporter).

The provider is kept here rather than installed as the API's global one: the global can be set
only once per process, and tests switch tracing on and off around single tests.

Context crosses processes as W3C trace context (`traceparent`, `tracestate`): HTTP headers from
the gateway to the booking service, outbox row headers, then Kafka message headers. The active
span's trace id is put into `common.logs.trace_id_var`, so JSON log lines carry it.

| variable | default | meaning |
|---|---|---|
| `OTEL_EXPORTER_OTLP_ENDPOINT` | (unset: off) | OTLP/HTTP collector: `http://otel-collector:4318` |
| `OTEL_SERVICE_NAME` | the process's name | `service.name` of the spans |
| `OTEL_SDK_DISABLED` | `false` | `true` keeps tracing off even with an endpoint |
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span
from opentelemetry.trace import SpanKind as SpanKind  # re-exported: callers pass tracing.SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common.logs import trace_id_var

log = logging.getLogger(__name__)

TRACER_NAME = "booking-rush"
TRACE_HEADERS = ("traceparent", "tracestate")
_TRACE_HEADERS_BYTES = tuple(name.encode() for name in TRACE_HEADERS)

_propagator = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: trace.Tracer | None = None


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(
    service: str,
    env: Mapping[str, str] | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Switch tracing on for this process (entrypoints call it once, before building apps).

    Returns the provider, or None when tracing stays off (no endpoint, disabled, or the OTLP
    exporter package missing: logged, the service runs untraced rather than not at all).
    """
    global _provider, _tracer
    env = os.environ if env is None else env
    if exporter is None:
        if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return None
        if not (
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        ):
            return None
        otlp = _otlp_exporter(env)
        if otlp is None:
            return None
        processor: Any = BatchSpanProcessor(otlp)
    else:
        processor = SimpleSpanProcessor(exporter)
    shutdown_tracing()
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or service})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer(TRACER_NAME)
    return provider


def _otlp_exporter(env: Mapping[str, str]) -> SpanExporter | None:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
    except ImportError:
        log.error(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but opentelemetry-exporter-otlp-proto-http is "
            "not installed: tracing stays off"
        )
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    )
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint)  # headers etc. from OTEL_* env
    return exporter


def shutdown_tracing() -> None:
    """Flush and switch tracing off again (tests; the SDK also flushes at interpreter exit)."""
    global _provider, _tracer
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def trace_id_hex(span: Span) -> str:
    return format(span.get_span_context().trace_id, "032x")


@contextmanager
def start_span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    carrier: Mapping[str, str] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Span]:
    """A current span, child of the context in `carrier` (when it holds one) or of the active
    span; its trace id goes to the logs. Yields a no-op span when tracing is off."""
    if _tracer is None:
        yield trace.INVALID_SPAN
        return
    parent: Context | None = _propagator.extract(carrier) if carrier else None
    with _tracer.start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as span:
        token = trace_id_var.set(trace_id_hex(span))
        try:
            yield span
        finally:
            trace_id_var.reset(token)


def current_headers() -> dict[str, str]:
    """The active span's context as W3C headers; empty when tracing is off or no span runs."""
    if _tracer is None:
        return {}
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier


def carrier_from_asgi(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The trace headers of an ASGI request (names arrive lower-cased)."""
    return {
        name.decode(): value.decode("latin-1")
        for name, value in headers
        if name in _TRACE_HEADERS_BYTES
    }


def carrier_from_kafka(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """The trace headers of a Kafka message (aiokafka: a sequence of (name, bytes))."""
    return {
        name: value.decode("latin-1")
        for name, value in headers or ()
        if name in TRACE_HEADERS and value is not None
    }


def replace_trace_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Outgoing HTTP headers carrying the active span's context instead of any the client sent.

    Unchanged when tracing is off (a client's own `traceparent` then passes through as is).
    """
    if _tracer is None:
        return headers
    kept = [(name, value) for name, value in headers if name.lower() not in TRACE_HEADERS]
    return kept + list(current_headers().items())


@contextmanager
def producer_span(topic: str, carrier: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """A PRODUCER span for one message, child of the context in `carrier` (the outbox row's).

    Yields the headers to send: the carrier with the producer span's context when tracing is
    on, the carrier unchanged when it is off.
    """
    if _tracer is None:
        yield dict(carrier)
        return
    attributes = {"messaging.system": "kafka", "messaging.destination.name": topic}
    with start_span(
        f"{topic} publish", kind=SpanKind.PRODUCER, carrier=carrier, attributes=attributes
    ):
        yield {**carrier, **current_headers()}


@contextmanager
def consumer_span(name: str, headers: Sequence[tuple[str, bytes]] | None) -> Iterator[Span]:
    """A CONSUMER span around handling one Kafka message, continuing the trace its headers carry.

    Wire it into a consumer as `with consumer_span(f"{topic} process", message.headers): ...`.
    """
    if _tracer is None:
        yield trace.INVALID_SPAN
        return
    with start_span(
        name,
        kind=SpanKind.CONSUMER,
        carrier=carrier_from_kafka(headers),
        attributes={"messaging.system": "kafka"},
    ) as span:
        yield span
