"""/healthz (the process answers), /readyz (database and Redis answer), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import text

from hub.adapters.db import inbox
from hub.adapters.queue import DELIVERIES_KEY, LATENCY_BUCKETS, LATENCY_KEY, QUEUES
from hub.runtime import Runtime
from hub.web.errors import problem

bp = Blueprint("health", __name__)


def _rt() -> Runtime:
    runtime: Runtime = current_app.extensions["hub.runtime"]
    return runtime


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    rt = _rt()
    checks = {"database": "ok", "redis": "ok"}
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = type(exc).__name__
    try:
        rt.redis.ping()
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = type(exc).__name__
    if all(v == "ok" for v in checks.values()):
        return jsonify({"status": "ready", "checks": checks})
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    return problem(503, "Service Unavailable", f"not ready: {failing} unreachable", checks=checks)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class HubCollector(Collector):
    """Reads counters that every web and worker process adds to in Redis, so the figures are
    the whole deployment's, not one gunicorn worker's."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        deliveries = CounterMetricFamily(
            "hub_webhook_deliveries", "Webhook deliveries by connection and outcome",
            labels=["connection", "outcome"])
        for field, value in self.rt.redis.hgetall(DELIVERIES_KEY).items():
            connection, _, outcome = _text(field).partition("|")
            deliveries.add_metric([connection, outcome], int(value))
        yield deliveries
        yield self._latency()
        depth = GaugeMetricFamily("hub_queue_depth", "Jobs waiting per RQ queue",
                                  labels=["queue"])
        for name in QUEUES:
            depth.add_metric([name], self.rt.dispatcher.queue(name).count)
        yield depth
        inbox_gauge = GaugeMetricFamily("hub_inbox_events", "Inbox events by status",
                                        labels=["status"])
        counts = inbox.counts_by_status(self.rt.engine)
        for status in inbox.STATUSES:
            inbox_gauge.add_metric([status], counts.get(status, 0))
        yield inbox_gauge

    def _latency(self) -> HistogramMetricFamily:
        raw = {_text(k): float(v) for k, v in self.rt.redis.hgetall(LATENCY_KEY).items()}
        buckets = [(str(b), raw.get(f"le:{b}", 0.0)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", raw.get("count", 0.0)))
        return HistogramMetricFamily(
            "hub_processing_latency_seconds",
            "Time from a delivery's acceptance to its processing",
            buckets=buckets, sum_value=raw.get("sum", 0.0))


@bp.get("/metrics")
def metrics() -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HubCollector(_rt()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
