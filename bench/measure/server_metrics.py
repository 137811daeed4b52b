"""The server's own view of a run, from TF Serving's Prometheus metrics.

TF Serving exposes Prometheus text on its REST port when started with `--monitoring_config_file`
holding `prometheus_config { enable: true }` (default path `/monitoring/prometheus/metrics`). We
scrape it just before and just after the measured window and subtract: the deltas of the
`:tensorflow:serving:request_latency` histogram (microseconds; labels model_name, API, entrypoint;
REST records only HTTP 200 answers) give the server-side latency distribution of the run, the
`:tensorflow:serving:request_count` deltas the requests by status, and, when batching is on,
`:tensorflow:serving:batching_session:queuing_latency` the time requests waited for a batch.

Client latency minus server latency is what JSON encoding/decoding, HTTP and the network cost.
Server percentiles are estimates: TF Serving's buckets grow by 1.8x each, and we interpolate
linearly inside a bucket as Prometheus' `histogram_quantile` does. The scrape window and the
client's measured window differ by the scrape round trips, a few milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tfsbench.bench.results import RunResult
from tfsbench.bench.stats import stability

DEFAULT_PATH = "/monitoring/prometheus/metrics"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
REQUEST_COUNT = ":tensorflow:serving:request_count"
QUEUING_LATENCY = ":tensorflow:serving:batching_session:queuing_latency"
QUANTILES: Mapping[str, float] = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99, "p999": 0.999}
ENABLE_HINT = (
    "start TF Serving with --monitoring_config_file pointing at a file holding "
    "'prometheus_config { enable: true, path: \"/monitoring/prometheus/metrics\" }'"
)

LabelSet = tuple[tuple[str, str], ...]


class MetricsError(ValueError):
    """Text that is not Prometheus exposition format."""


@dataclass(frozen=True, slots=True)
class Sample:
    name: str
    labels: LabelSet
    value: float

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


def _parse_float(text: str) -> float:
    """A bucket bound as TF Serving and prometheus_client write it ('+Inf', '1e+06', '10')."""
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    return float(text)


def parse_text(text: str) -> list[Sample]:
    """Parse Prometheus text exposition format (0.0.4) with prometheus_client's parser.

    Counter samples keep their family's name (TF Serving writes `:tensorflow:serving:request_count`
    without the `_total` suffix the parser would add). Labels are sorted by name.
    """
    from prometheus_client.parser import text_string_to_metric_families

    samples: list[Sample] = []
    try:
        for family in text_string_to_metric_families(text):
            total = family.name + "_total"
            for s in family.samples:
                name = family.name if family.type == "counter" and s.name == total else s.name
                samples.append(Sample(name, tuple(sorted(s.labels.items())), float(s.value)))
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MetricsError(f"not Prometheus text exposition format: {detail[:120]}") from None
    return samples


def _matches(sample: Sample, want: Mapping[str, str]) -> bool:
    return all(sample.label(k) == v for k, v in want.items())


# ---- histograms -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Histogram:
    """A Prometheus histogram summed over the matching series: cumulative counts per upper bound."""

    buckets: tuple[tuple[float, float], ...]  # (le, cumulative count), ascending, ends with +Inf
    sum: float
    count: float


def histogram(samples: Iterable[Sample], name: str, want: Mapping[str, str] | None = None) -> Histogram | None:
    """The histogram `name` summed over every series whose labels include `want`; None if absent."""
    want = want or {}
    buckets: dict[float, float] = {}
    total = 0.0
    count = 0.0
    found = False
    for s in samples:
        if not _matches(s, want):
            continue
        if s.name == f"{name}_bucket":
            le = s.label("le")
            if le is None:
                continue
            bound = _parse_float(le)
            buckets[bound] = buckets.get(bound, 0.0) + s.value
            found = True
        elif s.name == f"{name}_sum":
            total += s.value
            found = True
        elif s.name == f"{name}_count":
            count += s.value
            found = True
    if not found:
        return None
    ordered = tuple(sorted(buckets.items()))
    if not ordered or not math.isinf(ordered[-1][0]):
        ordered = ordered + ((math.inf, count),)
    return Histogram(ordered, total, count)


def histogram_delta(before: Histogram | None, after: Histogram) -> Histogram:
    """after - before, bucket by bucket. Raises MetricsError when a counter went down (restart)."""
    if before is None:
        return after
    prev = dict(before.buckets)
    buckets = []
    for le, cum in after.buckets:
        delta = cum - prev.get(le, 0.0)
        if delta < 0:
            raise MetricsError("the server's counters went down during the run (was it restarted?)")
        buckets.append((le, delta))
    count = after.count - before.count
    if count < 0:
        raise MetricsError("the server's counters went down during the run (was it restarted?)")
    return Histogram(tuple(buckets), after.sum - before.sum, count)


def quantile(h: Histogram, q: float) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q*count.

    A rank in the +Inf bucket returns the highest finite bound. None for an empty histogram.
    """
    total = h.buckets[-1][1] if h.buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, cum in h.buckets:
        if cum >= rank and cum > lower_count:
            if math.isinf(le):
                return lower_bound
            return lower_bound + (le - lower_bound) * (rank - lower_count) / (cum - lower_count)
        lower_bound, lower_count = (le if not math.isinf(le) else lower_bound), cum
    return lower_bound


def latency_summary_ms(h: Histogram, scale_to_ms: float = 0.001) -> dict[str, float] | None:
    """mean and percentiles in ms from a microsecond histogram; None when it counted nothing."""
    if h.count <= 0 and (not h.buckets or h.buckets[-1][1] <= 0):
        return None
    out: dict[str, float] = {}
    if h.count > 0:
        out["mean"] = h.sum / h.count * scale_to_ms
    for key, q in QUANTILES.items():
        value = quantile(h, q)
        if value is not None:
            out[key] = value * scale_to_ms
    return {k: round(v, 4) for k, v in out.items()}


# ---- scraping ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scrape:
    """One read of the metrics endpoint. `samples` is None when the read failed (`error` says why)."""

    url: str
    at_s: float  # time.perf_counter() when the answer arrived
    samples: tuple[Sample, ...] | None
    error: str | None = None


def metrics_url(base_url: str, path: str = DEFAULT_PATH) -> str:
    """The Prometheus URL on a TF Serving REST base URL (e.g. http://host:8501)."""
    if re.match(r"^https?://", path):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


# A metrics page is tens of KB (TF Serving with many models: a few MB); a target that streams more is
# misbehaving, and reading it whole would let it fill the client's memory mid-benchmark.
MAX_METRICS_BYTES = 16 * 1024 * 1024


def _too_large(url: str) -> Scrape:
    return Scrape(url, time.perf_counter(), None,
                  f"metrics page at {url} is larger than {MAX_METRICS_BYTES:,} bytes; not read")


def _from_body(url: str, status: int, content_type: str, body: bytes) -> Scrape:
    now = time.perf_counter()
    if len(body) > MAX_METRICS_BYTES:
        return _too_large(url)
    if status == 404:
        return Scrape(url, now, None, f"no Prometheus metrics at {url} (HTTP 404); {ENABLE_HINT}")
    if status != 200:
        return Scrape(url, now, None, f"metrics endpoint {url} answered HTTP {status}")
    try:
        text = body.decode("utf-8")
        return Scrape(url, now, tuple(parse_text(text)))
    except (UnicodeDecodeError, MetricsError) as exc:
        return Scrape(url, now, None, f"{url} is not Prometheus text ({exc})")


def scrape(url: str, timeout_s: float = 5.0) -> Scrape:
    """Read the metrics endpoint (blocking). Never raises: failures are recorded in `error`."""
    req = urllib.request.Request(url, headers={"Accept": "text/plain"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - user-given URL
            body = resp.read(MAX_METRICS_BYTES + 1)
            return _from_body(url, resp.status, resp.headers.get("Content-Type", ""), body)
    except urllib.error.HTTPError as exc:
        return _from_body(url, exc.code, "", b"")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Scrape(url, time.perf_counter(), None, f"cannot scrape {url} ({reason})")


async def scrape_async(session: Any, url: str, timeout_s: float = 5.0) -> Scrape:
    """Read the metrics endpoint with an aiohttp ClientSession, for engines that own an event loop."""
    import aiohttp

    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            chunks, size = [], 0
            while size <= MAX_METRICS_BYTES:
                chunk = await resp.content.read(MAX_METRICS_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            body = b"".join(chunks)
            return _from_body(url, resp.status, resp.headers.get("Content-Type", ""), body)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Scrape(url, time.perf_counter(), None, f"cannot scrape {url} ({type(exc).__name__}: {exc})")


# ---- the run's server view --------------------------------------------------------------------


def server_view(before: Scrape, after: Scrape, model: str, api: str = "predict",
                entrypoint: str = "REST") -> dict[str, Any]:
    """The `server` field of a RunResult from two scrapes around the measured window."""
    view: dict[str, Any] = {
        "scrape_url": after.url,
        "found": False,
        "error": None,
        "model_name": model,
        "api": api,
        "window_s": round(after.at_s - before.at_s, 6),
        "requests": 0,
        "latency_ms": None,
        "latency_buckets_us": [],
        "request_count_by_status": {},
        "batching_queuing_latency_ms": None,
    }
    if before.samples is None or after.samples is None:
        view["error"] = before.error or after.error
        return view
    want = {"model_name": model, "API": api, "entrypoint": entrypoint}
    after_h = histogram(after.samples, REQUEST_LATENCY, want)
    if after_h is None:
        if histogram(after.samples, REQUEST_LATENCY) is None:
            view["error"] = f"{after.url} has no {REQUEST_LATENCY} metric (not TF Serving, or an old version)"
        else:
            view["error"] = f"{REQUEST_LATENCY} has no series for model {model!r} (REST {api})"
        return view
    try:
        delta = histogram_delta(histogram(before.samples, REQUEST_LATENCY, want), after_h)
        view["found"] = True
        view["requests"] = int(round(delta.count))
        view["latency_ms"] = latency_summary_ms(delta)
        view["latency_buckets_us"] = [[_json_bound(le), int(round(c))] for le, c in _trimmed(delta.buckets)]
        view["request_count_by_status"] = _status_counts(before.samples, after.samples, model)
        queue_after = histogram(after.samples, QUEUING_LATENCY)
        if queue_after is not None:
            queue = histogram_delta(histogram(before.samples, QUEUING_LATENCY), queue_after)
            view["batching_queuing_latency_ms"] = latency_summary_ms(queue)
    except MetricsError as exc:
        view["found"] = False
        view["error"] = str(exc)
    return view


def _trimmed(buckets: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """The cumulative buckets that carry information: from the last empty one before the data to
    the first full one, plus +Inf (TF Serving has 34; a run usually touches a handful)."""
    if not buckets or buckets[-1][1] <= 0:
        return []  # the server saw no request in the window: no bucket carries information
    total = buckets[-1][1]
    first = next((i for i, (_, c) in enumerate(buckets) if c > 0), len(buckets) - 1)
    last = next((i for i, (_, c) in enumerate(buckets) if c >= total), len(buckets) - 1)
    kept = list(buckets[max(0, first - 1) : last + 1])
    if not math.isinf(kept[-1][0]):
        kept.append(buckets[-1])
    return kept


def _json_bound(le: float) -> float | str:
    return "+Inf" if math.isinf(le) else le


def _status_counts(before: Iterable[Sample], after: Iterable[Sample], model: str) -> dict[str, int]:
    def totals(samples: Iterable[Sample]) -> dict[str, float]:
        out: dict[str, float] = {}
        for s in samples:
            if s.name in (REQUEST_COUNT, f"{REQUEST_COUNT}_total") and s.label("model_name") == model:
                status = s.label("status") or "unknown"
                out[status] = out.get(status, 0.0) + s.value
        return out

    prev, now = totals(before), totals(after)
    counts = {status: int(round(v - prev.get(status, 0.0))) for status, v in now.items()}
    if any(c < 0 for c in counts.values()):
        raise MetricsError("the server's request counters went down during the run (was it restarted?)")
    return {k: v for k, v in sorted(counts.items()) if v}


def attach_server_view(result: RunResult, before: Scrape, after: Scrape) -> RunResult:
    """A copy of `result` carrying the server's view computed from two scrapes."""
    return dataclasses.replace(result, server=server_view(before, after, result.config.model))


class Measure:
    """Scrape before and after a measured window; the engine's only hook is begin()/end().

        view = server_metrics.Measure(config.url, config.model)
        await view.begin_async(session)      # or view.begin()
        ... measured window ...
        await view.end_async(session)        # or view.end()
        result = view.attach(result)
    """

    def __init__(self, base_url: str, model: str, path: str = DEFAULT_PATH, api: str = "predict",
                 entrypoint: str = "REST") -> None:
        self.url = metrics_url(base_url, path)
        self.model = model
        self.api = api
        self.entrypoint = entrypoint  # TF Serving labels latency by door: REST or GRPC
        self.before: Scrape | None = None
        self.after: Scrape | None = None

    def begin(self) -> None:
        self.before = scrape(self.url)

    def end(self) -> None:
        self.after = scrape(self.url)

    async def begin_async(self, session: Any) -> None:
        self.before = await scrape_async(session, self.url)

    async def end_async(self, session: Any) -> None:
        self.after = await scrape_async(session, self.url)

    def view(self) -> dict[str, Any] | None:
        if self.before is None or self.after is None:
            return None
        return server_view(self.before, self.after, self.model, self.api, self.entrypoint)

    def attach(self, result: RunResult) -> RunResult:
        view = self.view()
        return result if view is None else dataclasses.replace(result, server=view)


def measure(base_url: str, model: str, path: str = DEFAULT_PATH) -> Measure:
    """Start a server view for one run (see `Measure`)."""
    return Measure(base_url, model, path)


# ---- the runner's hook --------------------------------------------------------------------------

_START_WAIT_S = 120.0  # give up on the before-scrape if the engines never start


class Window:
    """Scrapes at the start of a run's measured window (in a helper thread) and at its end.

    The runner's whole hook is two lines:

        server_view = server_metrics.window(config, lambda: tracker.start_at)
        ...
        return server_view.attach(result)

    `start_at()` returns the engines' shared perf_counter start (None until they start); the
    measured window opens `config.warmup_s` later. `config.extra["server_metrics"]` may name another
    metrics path or URL, or be "off"; `config.extra["server_metrics_window_s"]` (seconds) adds a
    scrape every that many seconds and `server["windows"]`: per-interval requests, p50 and p99.
    """

    def __init__(self, config: Any, start_at: Any) -> None:
        import threading

        extra = getattr(config, "extra", {}) or {}
        setting = extra.get("server_metrics", DEFAULT_PATH)
        self.every_s = float(extra.get("server_metrics_window_s") or 0.0)
        self.scrapes: list[Scrape] = []
        self.enabled = setting not in ("off", "", None, False)
        if getattr(config, "protocol", "rest") == "grpc" and not re.match(r"^https?://", str(setting)):
            self.enabled = False  # a gRPC address has no metrics page: scrape only a full http(s) URL
        self._start_at = start_at
        self._warmup_s = float(getattr(config, "warmup_s", 0.0) or 0.0)
        # a closed-loop run measuring until stable may set aside its first seconds (at most a third of
        # its bound, stability.settled_start): a scrape at each of them lets the view start there too
        duration = getattr(config, "duration_s", None)
        self._marks_n = (stability.most_set_aside(duration) if getattr(config, "until_stable", False) and duration
                         and getattr(config, "mode", "") == "closed" else 0)
        self._marks: dict[int, Scrape] = {}
        self._done = threading.Event()
        self.measure = Measure(config.url, config.model, str(setting) if self.enabled else DEFAULT_PATH,
                               entrypoint="GRPC" if getattr(config, "protocol", "rest") == "grpc" else "REST")
        self._thread = threading.Thread(target=self._before, name="tfsbench-scrape", daemon=True)
        if self.enabled:
            self._thread.start()

    def _before(self) -> None:
        deadline = time.perf_counter() + _START_WAIT_S
        start = self._start_at()
        while start is None:
            if self._done.wait(0.01) or time.perf_counter() > deadline:
                return
            start = self._start_at()
        delay = start + self._warmup_s - time.perf_counter()
        if delay > 0 and self._done.wait(delay):
            return
        self.measure.begin()
        opened = time.perf_counter()
        for k in range(1, self._marks_n + 1):
            if self._done.wait(max(0.0, opened + k - time.perf_counter())):
                return
            self._marks[k] = scrape(self.measure.url)
        while self.every_s > 0 and not self._done.wait(self.every_s):
            self.scrapes.append(scrape(self.measure.url))

    def attach(self, result: RunResult, settled_s: float = 0.0) -> RunResult:
        """Scrape the end of the window and return `result` with its `server` view (unchanged when
        scraping is off or the window never opened, e.g. a run stopped during warmup). `settled_s`:
        the run's result starts that many seconds into the measured window, and so does the view."""
        self._done.set()
        if not self.enabled:
            return result
        self._thread.join(30)
        if self.measure.before is None:
            return result
        if settled_s:
            mark = self._marks.get(int(settled_s))
            if mark is None:  # no scrape at that second: a view of other seconds would not match the client's
                return result
            self.measure.before = mark
        self.measure.end()
        result = self.measure.attach(result)
        if self.every_s > 0 and result.server and result.server.get("found") and self.measure.after:
            points = [self.measure.before, *self.scrapes, self.measure.after]
            server = dict(result.server)
            server["windows"] = windows(points, self.measure.model, self.measure.api, self.measure.entrypoint)
            result = dataclasses.replace(result, server=server)
        return result


def windows(scrapes: list[Scrape], model: str, api: str = "predict", entrypoint: str = "REST") -> list[dict[str, Any]]:
    """Per-interval server latency between consecutive scrapes (t_s from the first scrape)."""
    want = {"model_name": model, "API": api, "entrypoint": entrypoint}
    out: list[dict[str, Any]] = []
    t0 = scrapes[0].at_s
    for prev, cur in zip(scrapes, scrapes[1:], strict=False):
        if prev.samples is None or cur.samples is None:
            continue
        after = histogram(cur.samples, REQUEST_LATENCY, want)
        if after is None:
            continue
        try:
            delta = histogram_delta(histogram(prev.samples, REQUEST_LATENCY, want), after)
        except MetricsError:
            continue
        lat = latency_summary_ms(delta) or {}
        out.append({
            "t_s": round(prev.at_s - t0, 3),
            "duration_s": round(cur.at_s - prev.at_s, 3),
            "requests": int(round(delta.count)),
            "p50_ms": lat.get("p50"),
            "p99_ms": lat.get("p99"),
        })
    return out


def window(config: Any, start_at: Any) -> Window:
    """Start scraping around `config`'s measured window (see `Window`)."""
    return Window(config, start_at)
