"""TF Serving's Prometheus metrics, with its names, labels, buckets and text layout.

So that the suite's server-metrics features (scrape before and after a run, diff the histograms) can
be tested against the embedded target exactly as against `tensorflow/serving` with a monitoring
config. Layout follows `tensorflow_serving/util/prometheus_exporter.cc`: `# TYPE` lines, cumulative
`_bucket{...,le="..."}` lines with limits printed to 6 significant digits, then `_sum` and `_count`.
"""

from __future__ import annotations

from bisect import bisect_right

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
WRAPPED_RUN_COUNT = ":tensorflow:serving:batching_session:wrapped_run_count"


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
    """absl::StrCat(double): six significant digits, no trailing zeros."""
    return f"{value:.6g}"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


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
    """Counters and histograms of one embedded server. Not thread-safe: used from its event loop."""

    def __init__(self) -> None:
        self.request_count: dict[tuple[str, str], int] = {}
        self.request_latency: dict[tuple[str, str, str], Histogram] = {}
        self.queuing_latency: dict[str, Histogram] = {}
        self.wrapped_run_count = 0  # batches run (TF: "run calls on the wrapped session")

    def count_request(self, model_name: str, status: str) -> None:
        key = (model_name, status)
        self.request_count[key] = self.request_count.get(key, 0) + 1

    def observe_latency(self, model_name: str, api: str, latency_us: float, entrypoint: str = "REST") -> None:
        key = (model_name, api, entrypoint)
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
        """The exposition page, in the order TF Serving's registry sorts metric names."""
        lines: list[str] = []
        if self.queuing_latency:
            _histogram_lines(
                lines,
                QUEUING_LATENCY,
                [((("thread_pool_name", name),), hist) for name, hist in sorted(self.queuing_latency.items())],
            )
        if self.queuing_latency or self.wrapped_run_count:
            lines.append(f"# TYPE {WRAPPED_RUN_COUNT} counter")
            lines.append(f"{WRAPPED_RUN_COUNT}{{}} {self.wrapped_run_count}")
        if self.request_count:
            lines.append(f"# TYPE {REQUEST_COUNT} counter")
            for (model, status), count in sorted(self.request_count.items()):
                lines.append(
                    f'{REQUEST_COUNT}{{model_name="{_label_value(model)}",status="{_label_value(status)}"}} {count}'
                )
        if self.request_latency:
            _histogram_lines(
                lines,
                REQUEST_LATENCY,
                [
                    ((("model_name", m), ("API", a), ("entrypoint", e)), hist)
                    for (m, a, e), hist in sorted(self.request_latency.items())
                ],
            )
        return "\n".join(lines) + "\n"


def _histogram_lines(
    lines: list[str], name: str, series: list[tuple[tuple[tuple[str, str], ...], Histogram]]
) -> None:
    lines.append(f"# TYPE {name} histogram")
    for labels, hist in series:
        label_text = ",".join(f'{key}="{_label_value(value)}"' for key, value in labels)
        prefix = f"{name}_bucket{{{label_text},"
        cumulative = 0
        for i, count in enumerate(hist.counts):
            cumulative += count
            limit = _num(hist.bounds[i]) if i < len(hist.bounds) else "+Inf"
            lines.append(f'{prefix}le="{limit}"}} {cumulative}')
        lines.append(f"{name}_sum{{{label_text}}} {_num(hist.sum)}")
        lines.append(f"{name}_count{{{label_text}}} {cumulative}")
