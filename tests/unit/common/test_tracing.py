"""Which OTEL_* settings turn tracing on, and which stop the process at start."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import tracing
from common.settings import load_settings
from common.tracing import TracingSettings


def exporters(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_TRACES_EXPORTER",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings(TracingSettings).exporters()


def test_nothing_set_is_no_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exporters(monkeypatch) == []
    assert exporters(monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT="") == []  # compose passes it on empty


def test_the_sdk_variables_choose_the_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    assert exporters(monkeypatch, OTEL_TRACES_EXPORTER="console") == ["console"]
    assert exporters(monkeypatch, OTEL_EXPORTER_OTLP_ENDPOINT="http://collector:4317") == ["otlp"]
    assert exporters(monkeypatch, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://collector:4317") == ["otlp"]
    assert exporters(monkeypatch, OTEL_TRACES_EXPORTER="Console, otlp") == ["console", "otlp"]
    # An explicit exporter list wins over the endpoint; `none` is no tracing.
    assert exporters(monkeypatch, OTEL_TRACES_EXPORTER="none", OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4317") == []
    assert exporters(monkeypatch, OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true") == []


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_TRACES_EXPORTER", "zipkin"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")],
)
def test_what_this_build_cannot_do_stops_it_with_one_line(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        exporters(monkeypatch, **{variable: value})
    assert str(stopped.value).startswith(f"configuration error: {variable}: ")


def test_off_installs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tracing, "_tracer", None)
    assert tracing.configure_tracing("test", TracingSettings()) is False
    assert tracing.tracer() is None
    assert tracing.current_ids() is None
    with tracing.span("work"):
        assert tracing.current_ids() is None


def test_a_span_of_the_process_own_work(spans: InMemorySpanExporter) -> None:
    with tracing.span("reconcile order", {"order_id": "ord_1"}):
        ids = tracing.current_ids()
    assert ids is not None
    (done,) = spans.get_finished_spans()
    assert (format(done.context.trace_id, "032x"), format(done.context.span_id, "016x")) == ids
    assert done.parent is None
    assert done.attributes == {"order_id": "ord_1"}


def test_a_failed_span_says_the_type_not_the_message(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="sk_live_secret"), tracing.span("work"):
        raise ValueError("sk_live_secret")
    (done,) = spans.get_finished_spans()
    assert done.status.description == "ValueError"
    assert "sk_live_secret" not in done.to_json()
