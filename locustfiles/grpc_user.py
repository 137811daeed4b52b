"""Locust users for TensorFlow Serving's gRPC `PredictionService.Predict`.

    locust -f locustfiles/grpc_user.py -H grpc://127.0.0.1:8500 --model numeric --kind numeric --batch-size 8

Locust's documented pattern for gRPC: grpcio made cooperative with gevent, one channel per user, and
every call reported through `environment.events.request` (request_type "grpc"). The options are the
REST users' (`locustfiles/config.py`: --model, --kind, --batch-size, --version/--label, --timeout,
--pool-size, --header, gates...), so the same locust.conf works for both; requests are the serialized
PredictRequests tfsbench's own gRPC engine sends (built once per process after a gRPC preflight:
GetModelStatus, GetModelMetadata for --kind auto, one Predict). Payload sizes go to the same "Payload"
tab, `<csv-prefix>_payload.csv` and `--tfs-result` export as the REST users' (the result says
protocol "grpc"). Failures are classified like the grpc engine's (`timeout`, `refused`,
`grpc_invalid_argument: ...`).
"""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

from locust import User, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from tfsbench.locustfiles import config as options
from tfsbench.locustfiles import report
from tfsbench.locustfiles.metrics import PayloadMetrics
from tfsbench.payloads.errors import InputError

logger = logging.getLogger("tfsbench.locust.grpc")
DEFAULT_HEADLESS_RUN_TIME_S = 60


class GrpcFailure(Exception):
    """A classified failure; its repr is the message, so Locust's tables read cleanly."""

    def __repr__(self) -> str:
        return str(self.args[0]) if self.args else "failure"


class GrpcState:
    """Per-process state: options, the request pool, payload metrics (what report.finish reads)."""

    def __init__(self) -> None:
        self.cfg: options.UserConfig | None = None
        self.host = ""
        self.pool: Any = None
        self.metadata: tuple[tuple[str, str], ...] = ()
        self.metrics = PayloadMetrics()
        self.started_at = 0.0
        self.stopped_at = 0.0
        self.is_worker = False
        self.setup_error: str | None = None
        self.sent = 0
        self.recorded = 0
        self.worker_ids: set[str] = set()

    def configure(self, environment: Any) -> None:
        """Options, host check, preflight and the request pool (once per process and configuration)."""
        try:
            cfg = options.user_config(environment.parsed_options)
            host = check_grpc_host(environment.host)
            if cfg != self.cfg or host != self.host or self.pool is None:
                self.pool = preflight_pool(host, cfg)
                self.metadata = grpc_metadata_of(cfg)
            self.cfg, self.host, self.setup_error = cfg, host, None
        except InputError as exc:
            self.setup_error = str(exc)


def check_grpc_host(host: str | None) -> str:
    from tfsbench.bench.measure.engine_grpc import check_grpc_url

    text = (host or "").strip()
    if not text:
        raise InputError("--host: the gRPC target is required, e.g. grpc://127.0.0.1:8500")
    try:
        check_grpc_url(text)
    except InputError:
        raise InputError(f"--host: {text!r} is not a gRPC address grpc://HOST:PORT (grpcs:// for TLS), "
                         "e.g. grpc://127.0.0.1:8500") from None
    return text


def grpc_metadata_of(cfg: options.UserConfig) -> tuple[tuple[str, str], ...]:
    from tfsbench.bench.measure.engine_grpc import grpc_metadata

    return grpc_metadata(dict(cfg.headers))


def run_config(host: str, cfg: options.UserConfig) -> Any:
    """The RunConfig the grpc engine would run with (preflight and pool building reuse it)."""
    from tfsbench.bench.results import RunConfig

    payload = {"image_size": list(cfg.image_size), "image_format": cfg.image_format,
               "text_words": list(cfg.text_words)}
    return RunConfig(url=host, model=cfg.model, kind=cfg.kind, batch_size=cfg.batch_size, format=cfg.format,
                     mode="closed", engine="grpc", protocol="grpc", version=cfg.version, label=cfg.label,
                     signature=cfg.signature, concurrency=1, requests_limit=1, seed=cfg.seed,
                     timeout_s=cfg.timeout_s, pool_size=cfg.pool_size, source="locust",
                     extra={"payload": payload})


def preflight_pool(host: str, cfg: options.UserConfig) -> Any:
    """GetModelStatus (+ metadata for auto) and one Predict, then the pool; InputError in one line."""
    from tfsbench.bench.measure import preflight_grpc

    _, pool = preflight_grpc.preflight_and_pool(run_config(host, cfg), dict(cfg.headers))
    return pool


def _state(environment: Any) -> GrpcState:
    state = getattr(environment, "tfsbench_state", None)
    if state is None:
        state = GrpcState()
        environment.tfsbench_state = state
    return state


class _GrpcPredictUser(User):
    """Calls Predict with pre-serialized requests as fast as the server answers (closed loop)."""

    abstract = True
    kind = "auto"

    def on_start(self) -> None:
        import grpc
        from tfsbench.bench.measure.engine_grpc import channel_options, check_grpc_url
        from tfsbench.payloads.tfs_proto import PREDICT_METHOD

        state = _state(self.environment)
        if state.setup_error or state.pool is None:
            self.environment.events.request.fire(
                request_type="grpc", name=f"{self.kind} setup", response_time=0.0, response_length=0,
                exception=GrpcFailure(f"config: {state.setup_error or 'no request pool'}"), context={})
            raise StopUser()
        address, tls = check_grpc_url(state.host)
        opts = channel_options(64 * 2**20)
        if tls:
            from tfsbench.bench.measure.engine_grpc import channel_credentials

            self._channel = grpc.secure_channel(address, channel_credentials(), options=opts)
        else:
            self._channel = grpc.insecure_channel(address, options=opts)
        self._call = self._channel.unary_unary(PREDICT_METHOD)
        self._tfs = state
        self._name = f"{self.kind if self.kind != 'auto' else state.cfg.kind} b={state.pool.batch_size} grpc"
        self._pool = state.pool
        self._i = random.randrange(len(self._pool.bodies))
        self._timeout_s = state.cfg.timeout_s if state.cfg else 30.0

    def on_stop(self) -> None:
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.close()

    @task
    def predict(self) -> None:
        import grpc
        from tfsbench.bench.measure.engine_grpc import check_response, error_class

        pool, state = self._pool, self._tfs
        i = self._i = (self._i + 1) % len(pool.bodies)
        state.sent += 1
        state.metrics.attempts += 1
        start = time.time()
        t0 = time.perf_counter()
        body = b""
        message = None
        try:
            body = self._call(pool.bodies[i], timeout=self._timeout_s, metadata=state.metadata or None)
            outcome = check_response(body, pool.batch_size, "full")
            if outcome.error is not None:
                message = f"{outcome.error}: {outcome.detail}"
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or ""
            message = f"{error_class(code, details)}: {code.name}: {details}"[:300]
        self.environment.events.request.fire(
            request_type="grpc", name=self._name, response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=len(body), exception=GrpcFailure(message) if message else None,
            context={"tfs": (pool.batch_size, pool.wire_bytes[i], pool.raw_bytes[i])}, start_time=start)


class GrpcTextUser(_GrpcPredictUser):
    kind = "text"


class GrpcImageUser(_GrpcPredictUser):
    kind = "image"


class GrpcNumericUser(_GrpcPredictUser):
    kind = "numeric"


class GrpcAutoUser(_GrpcPredictUser):
    kind = "auto"


USER_BY_KIND = {"text": GrpcTextUser, "image": GrpcImageUser, "numeric": GrpcNumericUser, "auto": GrpcAutoUser}


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    for opt in options.OPTIONS:
        kwargs: dict[str, Any] = {"default": opt.default, "help": opt.help,
                                  "include_in_web_ui": opt.group in ("payload", "shape")}
        if opt.group == "auth":
            kwargs.update(action="append", default=[])
        if opt.choices:
            kwargs["choices"] = opt.choices
        parser.add_argument(opt.flag, **kwargs)


def _fail_fast(message: str) -> None:
    print(f"locust: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


@events.init.add_listener
def _on_init(environment: Any, runner: Any, web_ui: Any, **_: Any) -> None:
    import grpc.experimental.gevent as grpc_gevent

    grpc_gevent.init_gevent()  # grpcio's calls yield to other greenlets (Locust's gRPC pattern)
    from tfsbench.bench.measure.engine_grpc import quiet_grpc_logs

    quiet_grpc_logs()
    state = _state(environment)
    _bind_listeners(environment, state)
    if isinstance(runner, WorkerRunner):
        state.is_worker = True

        @environment.events.report_to_master.add_listener
        def _ship(client_id: str, data: dict[str, Any], **__: Any) -> None:
            data["tfs_payload"] = state.metrics.take_delta()

        return
    if isinstance(runner, MasterRunner):

        @environment.events.worker_report.add_listener
        def _merge(client_id: str, data: dict[str, Any], **__: Any) -> None:
            state.worker_ids.add(client_id)
            if data.get("tfs_payload"):
                state.metrics.merge_delta(data["tfs_payload"])

    opts = environment.parsed_options
    if opts is None:
        return
    try:
        cfg = options.user_config(opts)
        options.gates(opts)
        if getattr(opts, "headless", False):
            state.configure(environment)
            if state.setup_error:
                raise InputError(state.setup_error)
            if not getattr(opts, "run_time", None):
                opts.run_time = DEFAULT_HEADLESS_RUN_TIME_S
            print(f"target: gRPC Predict at {state.host}", file=sys.stderr, flush=True)
    except InputError as exc:
        if getattr(opts, "headless", False):
            _fail_fast(str(exc))
        logger.warning("fix before starting: %s", exc)
        return
    if not (getattr(opts, "user_classes", None) or getattr(opts, "class_picker", False)):
        environment.user_classes = [USER_BY_KIND[cfg.kind]]


def _bind_listeners(environment: Any, state: GrpcState) -> None:
    def on_test_start(**_: Any) -> None:
        state.configure(environment)  # the web UI may have changed the options; rebuilt only if they did
        state.metrics.reset()
        state.worker_ids.clear()
        state.started_at = time.time()
        state.stopped_at = 0.0

    def on_test_stop(**_: Any) -> None:
        state.stopped_at = time.time()

    def on_request(name: str, response_time: float, response_length: int, exception: Any,
                   context: dict[str, Any] | None = None, start_time: float | None = None, **_: Any) -> None:
        info = context.get("tfs") if context else None
        if info is not None:
            state.recorded += 1
            batch, wire, raw = info
            state.metrics.record(name, batch, wire, raw, response_length, response_time, exception is None,
                                 start_time or 0.0)

    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)
    environment.events.request.add_listener(on_request)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    state = _state(environment)
    print(f"tfsbench accounting: this process sent {state.sent} requests and recorded {state.recorded}",
          file=sys.stderr, flush=True)
    if state.is_worker:
        return
    report.finish(environment, state)
    out = getattr(environment.parsed_options, "tfs_result", "") or ""
    if out:
        _mark_grpc(out)


def _mark_grpc(path: str) -> None:
    """The exported result says what was measured: the gRPC protocol at a grpc:// address."""
    import dataclasses

    from tfsbench.bench.results import load_result, save_result

    try:
        result = load_result(path)
    except (OSError, InputError):
        return
    config = dataclasses.replace(result.config, protocol="grpc")
    save_result(dataclasses.replace(result, config=config), path)
