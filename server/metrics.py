"""TF Serving's Prometheus metrics, with its names, labels and buckets, exposed by prometheus_client.

So that the suite's server-metrics features (scrape before and after a run, diff the histograms) can
be tested against the embedded target exactly as against `tensorflow/serving` with a monitoring
config. The page is written by `prometheus_client.generate_latest` from one CollectorRegistry per
server (never the process-global one), so label values are escaped by the library the ecosystem
uses: a model name with a newline or a quote in the URL cannot add lines to the page.

Series are bounded: only names of loaded models become `model_name` label values; every request to
a model that is not loaded is counted under the single value `UNKNOWN_MODEL`. The names and labels
follow `tensorflow_serving/util/prometheus_exporter.cc` (counters keep TF's name, without the
`_total` suffix prometheus_client would give them).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
WRAPPED_RUN_COUNT = ":tensorflow:serving:batching_session:wrapped_run_count"
# Not a valid model name (serve --model-name allows letters, digits, '_', '.', '-'), so never a clash.
UNKNOWN_MODEL = "(unknown)"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def exponential_bounds(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """monitoring::Buckets::Exponential: `count` finite upper limits scale * growth**i."""
    bounds = []
    bound = scale
    for _ in range(count):
        bounds.append(bound)
        bound *= growth
    return tuple(bounds)


# Request latency: scale 10 us, x1.8, 33 buckets (~20 minutes). Queuing: scale 100 us, x1.2, 52 (~1 s).
REQUEST_LATENCY_BOUNDS_US = exponential_bounds(10.0, 1.8, 33)
QUEUING_LATENCY_BOUNDS_US = exponential_bounds(100.0, 1.2, 52)


def _num(value: float) -> str:
    """absl::StrCat(double): six significant digits, no trailing zeros (TF's `le` label text)."""
    return f"{value:.6g}"


class Histogram:
    """One labelled histogram series: per-bucket counts (the last one is overflow) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # TF's histogram puts v in the first bucket whose limit is > v.
        self.counts[bisect_right(self.bounds, value)] += 1
        self.sum += value


class ServerMetrics:
    """Counters and histograms of one embedded server, updated from its event loop thread.

    `known_models` bounds the `model_name` label: any other name is counted as UNKNOWN_MODEL.
    """

    def __init__(self, known_models: Collection[str] | None = None) -> None:
        self._known = frozenset(known_models) if known_models is not None else None
        self.request_count: dict[tuple[str, str], int] = {}
        self.request_latency: dict[tuple[str, str, str], Histogram] = {}
        self.queuing_latency: dict[str, Histogram] = {}
        self.wrapped_run_count = 0  # batches run (TF: "run calls on the wrapped session")
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))

    def _model(self, name: str) -> str:
        return name if self._known is None or name in self._known else UNKNOWN_MODEL

    def count_request(self, model_name: str, status: str) -> None:
        key = (self._model(model_name), status)
        self.request_count[key] = self.request_count.get(key, 0) + 1

    def observe_latency(self, model_name: str, api: str, latency_us: float, entrypoint: str = "REST") -> None:
        key = (self._model(model_name), api, entrypoint)
        hist = self.request_latency.get(key)
        if hist is None:
            hist = self.request_latency[key] = Histogram(REQUEST_LATENCY_BOUNDS_US)
        hist.observe(latency_us)

    def observe_queuing(self, latency_us: float, thread_pool_name: str = "batch_threads") -> None:
        hist = self.queuing_latency.get(thread_pool_name)
        if hist is None:
            hist = self.queuing_latency[thread_pool_name] = Histogram(QUEUING_LATENCY_BOUNDS_US)
        hist.observe(latency_us)

    def count_batch(self) -> None:
        self.wrapped_run_count += 1

    def render(self) -> str:
        """The exposition page (Prometheus text format 0.0.4), in TF Serving's metric-name order."""
        text = generate_latest(self.registry).decode()
        # prometheus_client names a counter family NAME_total; TF Serving's page (and its samples) say NAME.
        for name in (WRAPPED_RUN_COUNT, REQUEST_COUNT):
            text = text.replace(f"# HELP {name}_total ", f"# HELP {name} ", 1)
            text = text.replace(f"# TYPE {name}_total counter\n", f"# TYPE {name} counter\n", 1)
        return text


class _Collector:
    """Yields the current values as metric families; prometheus_client writes and escapes them."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        if m.queuing_latency:
            family = Metric(QUEUING_LATENCY, "Distribution of wall time spent (in microseconds) in queuing",
                            "histogram")
            for name, hist in sorted(m.queuing_latency.items()):
                _histogram_samples(family, {"thread_pool_name": name}, hist)
            yield family
        if m.queuing_latency or m.wrapped_run_count:
            family = Metric(WRAPPED_RUN_COUNT, "Tracks the number of runs on the wrapped session", "counter")
            family.add_sample(WRAPPED_RUN_COUNT, {}, m.wrapped_run_count)
            yield family
        if m.request_count:
            family = Metric(REQUEST_COUNT, "The total number of requests.", "counter")
            for (model, status), count in sorted(m.request_count.items()):
                family.add_sample(REQUEST_COUNT, {"model_name": model, "status": status}, count)
            yield family
        if m.request_latency:
            family = Metric(REQUEST_LATENCY, "Distribution of wall time (in microseconds) for Tensorflow Serving"
                            " request.", "histogram")
            for (model, api, entrypoint), hist in sorted(m.request_latency.items()):
                _histogram_samples(family, {"model_name": model, "API": api, "entrypoint": entrypoint}, hist)
            yield family


def _histogram_samples(family: Metric, labels: dict[str, str], hist: Histogram) -> None:
    cumulative = 0
    for i, count in enumerate(hist.counts):
        cumulative += count
        limit = _num(hist.bounds[i]) if i < len(hist.bounds) else "+Inf"
        family.add_sample(family.name + "_bucket", {**labels, "le": limit}, cumulative)
    family.add_sample(family.name + "_sum", labels, hist.sum)
    family.add_sample(family.name + "_count", labels, cumulative)
