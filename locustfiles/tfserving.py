"""Locust users for TensorFlow Serving's REST `:predict`: pre-encoded bodies, validated answers.

    locust -f locustfiles/tfserving.py -H http://127.0.0.1:8501 --model numeric --batch-size 8

One user class per payload kind (TextUser, ImageUser, NumericUser) plus AutoUser, which builds its
payload from the model's signature. `--kind` picks the class unless classes are named on the
command line or picked in the web UI (`--class-picker`). Every parameter is a custom argument, so it
is editable in the web UI, on the command line and in `locust.conf` (see `locustfiles/config.py`).

Each user process encodes its pool of bodies once, at test start; the task only picks bytes, posts
them, reads and validates the answer (status, JSON, batch length) and fires Locust's request event.
Failures are classified (`http_503: ...`, `timeout: ...`, `reset: ...`, `invalid_body: ...`).
Payload-size metrics travel from workers to the master with Locust's `report_to_master` messages
and show in the web UI's "Payload" tab and in `<csv-prefix>_payload.csv`.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from typing import Any

import gevent
from gevent.lock import Semaphore
from geventhttpclient.url import URL
from locust import FastHttpUser, events, task
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from tfsbench.locustfiles import config as options
from tfsbench.locustfiles import report
from tfsbench.locustfiles.metrics import PayloadMetrics
from tfsbench.locustfiles.outcome import check_response, classify_exception
from tfsbench.locustfiles.runtime import Bodies, build_bodies, preflight
from tfsbench.payloads.errors import InputError

logger = logging.getLogger("tfsbench.locust")


class PredictFailure(Exception):
    """A classified failure; its repr is the message itself, so Locust's tables read cleanly."""

    def __repr__(self) -> str:
        return str(self.args[0]) if self.args else "failure"


class TfsState:
    """Per-process state of a run: parsed options, body pools by kind, payload metrics."""

    def __init__(self) -> None:
        self.cfg: options.UserConfig | None = None
        self.host: str = ""
        self.pools: dict[str, Bodies] = {}
        self.pool_errors: dict[str, str] = {}
        self.metrics = PayloadMetrics()
        self.started_at: float = 0.0
        self.stopped_at: float = 0.0
        self.lock = Semaphore()
        self.is_worker = False
        self.setup_error: str | None = None
        self.sent = 0  # lifetime counters of this process, for the accounting check at quit
        self.recorded = 0
        self.worker_ids: set[str] = set()  # master: workers that reported during the run

    def configure(self, environment: Any) -> None:
        """Re-read the options at test start (the web UI or the master may have changed them)."""
        try:
            cfg = options.user_config(environment.parsed_options)
            host = options.check_host(environment.host)
        except InputError as exc:
            self.setup_error = str(exc)
            return
        self.setup_error = None
        if cfg != self.cfg or host != self.host:
            self.pools.clear()
            self.pool_errors.clear()
        self.cfg, self.host = cfg, host

    def bodies(self, kind: str) -> Bodies:
        """The pool for `kind`, built on first use (once per process, under a lock)."""
        if self.setup_error:
            raise InputError(self.setup_error)
        with self.lock:
            if kind in self.pool_errors:
                raise InputError(self.pool_errors[kind])
            pool = self.pools.get(kind)
            if pool is None:
                assert self.cfg is not None
                try:
                    pool = build_bodies(self.host, self.cfg, kind)
                except InputError as exc:
                    self.pool_errors[kind] = str(exc)
                    raise
                self.pools[kind] = pool
                logger.info(
                    "pool %r: %d bodies, mean %.0f wire bytes", pool.name, len(pool),
                    sum(pool.wire_bytes) / len(pool),
                )
            return pool


def _state(environment: Any) -> TfsState:
    state = getattr(environment, "tfsbench_state", None)
    if state is None:
        state = TfsState()
        environment.tfsbench_state = state
    return state


class _PredictUser(FastHttpUser):
    """Posts pre-encoded bodies to `:predict` as fast as the server answers (closed loop)."""

    abstract = True
    kind = "auto"

    def __init__(self, environment: Any) -> None:
        state = _state(environment)
        if state.cfg is not None:
            self.network_timeout = state.cfg.timeout_s
            self.connection_timeout = state.cfg.timeout_s
        super().__init__(environment)
        self._fire = environment.events.request.fire
        self._pool: Bodies | None = None
        self._i = 0

    def on_start(self) -> None:
        state = _state(self.environment)
        try:
            pool = state.bodies(self.kind)
        except InputError as exc:
            self._fire(
                request_type="POST", name=f"{self.kind} setup", response_time=0.0, response_length=0,
                exception=PredictFailure(f"config: {exc}"), context={},
            )
            logger.error("%s: %s", type(self).__name__, exc)
            raise StopUser() from None
        self._pool = pool
        self._url = URL(state.host + pool.path)
        self._http = self.client.client.clientpool.get_client(self._url)
        self._timeout_s = state.cfg.timeout_s if state.cfg else 30.0
        self._i = random.randrange(len(pool))
        self._tfs = state

    @task
    def predict(self) -> None:
        pool = self._pool
        assert pool is not None
        i = self._i = (self._i + 1) % len(pool.bodies)
        start = time.time()
        t0 = time.perf_counter()
        body = b""
        state = self._tfs
        state.sent += 1
        state.metrics.attempts += 1
        timer = gevent.Timeout(self._timeout_s)
        timer.start()
        try:
            resp = self._http.request("POST", self._url.request_uri, body=pool.bodies[i], headers=pool.headers)
            body = resp.read()
            message = check_response(resp.status_code, body, pool.batch_size)
        except (*FAILURE_EXCEPTIONS, Exception) as exc:  # every failure is classified and counted once
            message = classify_exception(exc, self._timeout_s)
        finally:
            timer.close()
        self._fire(
            request_type="POST",
            name=pool.name,
            response_time=(time.perf_counter() - t0) * 1000.0,
            response_length=len(body),
            exception=PredictFailure(message) if message else None,
            context={"tfs": (pool.batch_size, pool.wire_bytes[i], pool.raw_bytes[i])},
            start_time=start,
            url=self._url,
            response=None,
        )


class TextUser(_PredictUser):
    """Text payloads (a string tensor per instance), e.g. the demo model `text`."""

    kind = "text"


class ImageUser(_PredictUser):
    """Image payloads (base64 JPEG/PNG in `{"b64": ...}`), e.g. the demo model `image`."""

    kind = "image"


class NumericUser(_PredictUser):
    """Numeric tensors, e.g. the demo model `numeric`."""

    kind = "numeric"


class AutoUser(_PredictUser):
    """Payloads generated from the model's signature (GET .../metadata at test start)."""

    kind = "auto"


USER_BY_KIND: dict[str, type[_PredictUser]] = {
    "text": TextUser,
    "image": ImageUser,
    "numeric": NumericUser,
    "auto": AutoUser,
}


# ---- custom arguments -------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any, **_: Any) -> None:
    for opt in options.OPTIONS:
        kwargs: dict[str, Any] = {
            "default": opt.default,
            "help": opt.help,
            "include_in_web_ui": opt.group in ("payload", "shape"),
        }
        if opt.group == "auth":  # repeatable; secrets stay out of the web UI (webui refuses them too)
            kwargs.update(action="append", default=[])
        if opt.choices:
            kwargs["choices"] = opt.choices
        if opt.group in ("payload", "shape"):
            kwargs["type"] = str if isinstance(opt.default, str) else type(opt.default)
            kwargs["type"] = _lenient(kwargs["type"])
        parser.add_argument(opt.flag, **kwargs)


def _lenient(kind: type) -> Any:
    """Keep a bad value as text so our checker reports it by flag name (argparse would say less)."""

    def convert(text: str) -> Any:
        try:
            return kind(text)
        except (TypeError, ValueError):
            return text

    convert.__name__ = kind.__name__
    return convert


# ---- lifecycle --------------------------------------------------------------------------------


def _fail_fast(message: str) -> None:
    print(f"locust: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


DEFAULT_HEADLESS_RUN_TIME_S = 60


def _bound_and_announce(environment: Any, opts: Any, host: str, cfg: options.UserConfig) -> None:
    """A headless run is bounded and says what it is about to do before it starts: without
    -t/--run-time (or a load shape, which ends by itself) it stops after DEFAULT_HEADLESS_RUN_TIME_S."""
    if not getattr(opts, "run_time", None) and environment.shape_class is None:
        opts.run_time = DEFAULT_HEADLESS_RUN_TIME_S
        logger.warning("no -t/--run-time given: stopping after %d s (give -t to run longer)",
                       DEFAULT_HEADLESS_RUN_TIME_S)
    users = getattr(opts, "num_users", None) or 1
    bound = f"for {opts.run_time:g} s" if getattr(opts, "run_time", None) else "until the load shape ends"
    print(f"target: POST {host.rstrip('/')}{cfg.predict_path()}", file=sys.stderr, flush=True)
    print(f"load:   {cfg.kind} b={cfg.batch_size} {cfg.format}; {users} users (closed loop), {bound}; "
          f"timeout {cfg.timeout_s:g} s", file=sys.stderr, flush=True)


def _select_user_class(environment: Any, kind: str) -> None:
    chosen = USER_BY_KIND[kind]
    environment.user_classes = [chosen]


@events.init.add_listener
def _on_init(environment: Any, runner: Any, web_ui: Any, **_: Any) -> None:
    state = _state(environment)
    _bind_state_listeners(environment, state)
    opts = environment.parsed_options
    if isinstance(runner, WorkerRunner):
        state.is_worker = True
        runner_events = environment.events

        @runner_events.report_to_master.add_listener
        def _ship(client_id: str, data: dict[str, Any], **__: Any) -> None:
            data["tfs_payload"] = state.metrics.take_delta()

        return
    if isinstance(runner, MasterRunner):

        @environment.events.worker_report.add_listener
        def _merge(client_id: str, data: dict[str, Any], **__: Any) -> None:
            state.worker_ids.add(client_id)
            delta = data.get("tfs_payload")
            if delta:
                state.metrics.merge_delta(delta)

    if opts is None:
        return
    explicit_classes = bool(getattr(opts, "user_classes", None)) or bool(getattr(opts, "class_picker", False))
    headless = bool(getattr(opts, "headless", False))
    try:
        cfg = options.user_config(opts)
        options.gates(opts)
        options.shape_config(opts)
        if headless:
            host = options.check_host(environment.host)
            preflight(host, cfg)
            _bound_and_announce(environment, opts, host, cfg)
    except InputError as exc:
        if headless:
            _fail_fast(str(exc))
        logger.warning("fix in the web UI before starting: %s", exc)
        cfg = None
    if cfg is not None and not explicit_classes:
        _select_user_class(environment, cfg.kind)
    if web_ui is not None:
        from tfsbench.locustfiles import webui

        webui.install(environment, state, select_kind=None if explicit_classes else _select_user_class)


def _bind_state_listeners(environment: Any, state: TfsState) -> None:
    """Listeners that need this process's state, bound to this environment's events."""

    def on_test_start(**_: Any) -> None:
        state.configure(environment)
        state.metrics.reset()
        state.worker_ids.clear()
        state.started_at = time.time()
        state.stopped_at = 0.0
        if state.setup_error and not state.is_worker:
            logger.error("cannot start: %s", state.setup_error)

    def on_test_stop(**_: Any) -> None:
        state.stopped_at = time.time()

    def on_reset_stats(**_: Any) -> None:
        state.metrics.reset()
        state.started_at = time.time()

    record = state.metrics.record

    def on_request(
        name: str,
        response_time: float,
        response_length: int,
        exception: Any,
        context: dict[str, Any] | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        info = context.get("tfs") if context else None
        if info is not None:
            state.recorded += 1
            batch, wire, raw = info
            record(name, batch, wire, raw, response_length, response_time, exception is None, start_time or 0.0)

    environment.events.test_start.add_listener(on_test_start)
    environment.events.test_stop.add_listener(on_test_stop)
    environment.events.reset_stats.add_listener(on_reset_stats)
    environment.events.request.add_listener(on_request)


@events.quitting.add_listener
def _on_quitting(environment: Any, **_: Any) -> None:
    state = _state(environment)
    print(
        f"tfsbench accounting: this process sent {state.sent} requests and recorded {state.recorded} "
        f"({state.sent - state.recorded} in flight when users were stopped)",
        file=sys.stderr,
        flush=True,
    )
    if state.is_worker:
        return
    report.finish(environment, state)
