"""sightd.metric_cells against prometheus_client's own Counter and Histogram, fed the same updates: the same
exposition text (but for the _created timestamps), and exact counts under concurrent updates."""

from __future__ import annotations

import re
import threading

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from sightd import metric_cells

BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.5, 1.0, 2.5, 60.0)
# On bounds (le is inclusive), between them, below the first, above the last, zero and negative.
VALUES = [0.0005, 0.0007, 0.001, 0.0001, 0.3, 1.0, 1.5, 2.5, 59.9, 60.0, 61.0, 1e9, 0.0, -1.0]


def exposition(registry: CollectorRegistry) -> list[str]:
    """The text format's lines, with each _created sample's timestamp replaced by a mark."""
    text = generate_latest(registry).decode()
    return [re.sub(r"^(\S+_created\S*) \S+$", r"\1 <created>", line) for line in text.splitlines()]


def feed(counter: object, histogram: object) -> None:
    for index, value in enumerate(VALUES):
        histogram.labels("Recognize", "unary").observe(value)  # type: ignore[attr-defined]
        if index % 3 == 0:
            histogram.labels("Infer", "unary").observe(value * 2)  # type: ignore[attr-defined]
        counter.labels("Recognize", "OK").inc()  # type: ignore[attr-defined]
    counter.labels("Recognize", "NOT_FOUND").inc(2.5)  # type: ignore[attr-defined]
    counter.labels("Infer", "OK")  # labelled, never incremented: exported at 0  # type: ignore[attr-defined]


def test_the_exposition_is_prometheus_clients() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    labels = ["grpc_method", "grpc_code"]
    feed(
        prometheus_client.Counter("calls_total", "Calls.", labels, registry=theirs),
        prometheus_client.Histogram(
            "call_seconds", "Call time.", ["grpc_method", "grpc_type"], buckets=BUCKETS, registry=theirs
        ),
    )
    feed(
        metric_cells.Counter("calls_total", "Calls.", labels, registry=ours),
        metric_cells.Histogram(
            "call_seconds", "Call time.", ["grpc_method", "grpc_type"], buckets=BUCKETS, registry=ours
        ),
    )
    assert exposition(ours) == exposition(theirs)
    assert 'call_seconds_bucket{grpc_method="Recognize",grpc_type="unary",le="1.0"} 8.0' in exposition(ours)
    assert ours.get_sample_value("calls_total", {"grpc_method": "Recognize", "grpc_code": "NOT_FOUND"}) == 2.5
    assert ours.get_sample_value("call_seconds_count", {"grpc_method": "Infer", "grpc_type": "unary"}) == 5


def test_updates_from_threads_are_all_counted() -> None:
    registry = CollectorRegistry()
    counter = metric_cells.Counter("n_total", "N.", ["k"], registry=registry).labels("a")
    histogram = metric_cells.Histogram("t_seconds", "T.", ["k"], buckets=(0.5, 1.0), registry=registry)
    child = histogram.labels("a")
    threads, updates = 8, 20_000

    def work() -> None:
        for index in range(updates):
            counter.inc()
            child.observe(0.25 if index % 2 else 0.75)

    running = [threading.Thread(target=work) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    total = threads * updates
    assert registry.get_sample_value("n_total", {"k": "a"}) == total
    assert registry.get_sample_value("t_seconds_bucket", {"k": "a", "le": "0.5"}) == total // 2
    assert registry.get_sample_value("t_seconds_count", {"k": "a"}) == total
    assert registry.get_sample_value("t_seconds_sum", {"k": "a"}) == pytest.approx(total * 0.5)


def test_bad_uses_are_refused() -> None:
    registry = CollectorRegistry()
    counter = metric_cells.Counter("c_total", "C.", ["k"], registry=registry)
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("a").inc(-1)
    with pytest.raises(ValueError, match="takes the labels"):
        counter.labels("a", "b")
    with pytest.raises(ValueError, match="increase"):
        metric_cells.Histogram("h", "H.", ["k"], buckets=(1.0, 0.5), registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):  # the registry refuses a name twice
        metric_cells.Counter("c_total", "C.", ["k"], registry=registry)
