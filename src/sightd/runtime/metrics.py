"""The runtime's Prometheus metrics, registered on a registry the caller serves.

No metric carries a version label: version keys are per tenant and unbounded, which Prometheus' label
cardinality does not survive. ``kind`` (recognition or network) is the only label besides the stage and
outcome ones. docs/runtime.md lists the metrics. Those updated for every request or batch are
``sightd.metric_cells``' (cheaper to update, exported alike); the cache's and the queue gauges are
prometheus_client's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sightd import metric_cells

# Seconds: from 0.5 ms (a batch delay) to a minute (a large detector's batch on a loaded machine).
TIME_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128)
KINDS = ("recognition", "network")
STAGES = ("decode_preprocess", "inference", "postprocess")
OUTCOMES = ("ok", "deadline_exceeded", "queue_full", "stopped", "failed", "cancelled")


class RuntimeMetrics:
    """Every metric of a Runtime; ``registry`` None makes a private one (tests, benchmarks)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "sightd") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        prefix = f"{namespace}_runtime"
        self.queue_seconds = metric_cells.Histogram(
            f"{prefix}_queue_seconds",
            "Time a request waited in its version's queue before its batch started",
            ["kind"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.stage_seconds = metric_cells.Histogram(
            f"{prefix}_stage_seconds",
            "Time one batch spent in a stage: decode_preprocess (decode, roi, resize, normalise), inference "
            "(ONNX Runtime), postprocess (box decoding, NMS, predictions, result messages)",
            ["kind", "stage"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.batch_seconds = metric_cells.Histogram(
            f"{prefix}_batch_seconds",
            "Time one batch took on its worker thread, all stages together",
            ["kind"],
            buckets=TIME_BUCKETS,
            registry=r,
        )
        self.batch_images = metric_cells.Histogram(
            f"{prefix}_batch_images",
            "Images per batch run (its count is the number of batches run, its sum the images run)",
            ["kind"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_requests = metric_cells.Histogram(
            f"{prefix}_batch_requests",
            "Requests per batch run",
            ["kind"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.inline_batches = metric_cells.Counter(
            f"{prefix}_inline_batches",
            "Batches run on the event loop's thread instead of a worker: a lone small image of a model whose "
            "single-image batches take less than inline_max_us",
            ["kind"],
            registry=r,
        )
        self.requests = metric_cells.Counter(
            f"{prefix}_requests",
            "Requests answered, by outcome: ok (run; some images may have failed alone), deadline_exceeded, "
            "queue_full, stopped, failed (the model did not load), cancelled (by the caller)",
            ["kind", "outcome"],
            registry=r,
        )
        self.queued_requests = Gauge(
            f"{prefix}_queued_requests", "Requests waiting in the queues, all versions together", registry=r
        )
        self.queued_images = Gauge(
            f"{prefix}_queued_images", "Images of the requests waiting in the queues", registry=r
        )
        self.queued_bytes = Gauge(
            f"{prefix}_queued_bytes", "Encoded image bytes of the requests waiting in the queues", registry=r
        )
        self.running_batches = Gauge(
            f"{prefix}_running_batches",
            "Batches handed to the worker threads: running, or next in line",
            registry=r,
        )
        self.cache_entries = Gauge(f"{prefix}_cache_entries", "Models loaded in the cache", registry=r)
        self.cache_bytes = Gauge(
            f"{prefix}_cache_bytes", "Estimated memory of the models loaded in the cache", registry=r
        )
        self.cache_budget_bytes = Gauge(
            f"{prefix}_cache_budget_bytes", "Memory the cache's models may take", registry=r
        )
        self.cache_evictions = Counter(
            f"{prefix}_cache_evictions", "Models evicted from the cache to make room", registry=r
        )
        self.cache_loads = Counter(
            f"{prefix}_cache_loads",
            "Model loads, by result (ok, failed); requests arriving while a model loads share its load",
            ["result"],
            registry=r,
        )
        self.cache_load_seconds = Histogram(
            f"{prefix}_cache_load_seconds",
            "Time a model took to load (session, checks, warm-up)",
            buckets=TIME_BUCKETS,
            registry=r,
        )
        # Every labelled series exists from the start, at zero, so that rates and tests see them.
        for kind in KINDS:
            for metric in (
                self.queue_seconds,
                self.batch_seconds,
                self.batch_images,
                self.batch_requests,
                self.inline_batches,
            ):
                metric.labels(kind)
            for stage in STAGES:
                self.stage_seconds.labels(kind, stage)
            for outcome in OUTCOMES:
                self.requests.labels(kind, outcome)
        for result in ("ok", "failed"):
            self.cache_loads.labels(result)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """One sample's current value (``sightd_runtime_batch_images_count``...), 0 when absent."""
        return self.registry.get_sample_value(name, labels or {}) or 0.0
