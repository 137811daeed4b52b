"""The web UI extension: a "Payload" tab, its CSV download, and checking the start form.

Uses Locust's documented extension points: `environment.web_ui.app` (Flask) and the
`extended_tabs` / `extended_tables` / `extended_csv_files` template arguments, with the rows
delivered as `extended_stats` in the `/stats/requests` poll (see Locust's examples/extend_web_ui.py).

The start form is checked before Locust starts the swarm: a bad value, an unreachable host or an
unknown model makes `/swarm` answer `success: false` with one line, which the UI shows under the
form; the run does not start.

Locust's `/swarm` copies every form field whose name matches a parsed option into the options, so
one POST could otherwise move `--tfs-result`, `--csv` or `--html` (and Locust writes there when it
quits). Only the fields the start form shows are accepted: Locust's own (users, rate, host, run
time, profile, classes, shape) and our `include_in_web_ui` parameters. Any other known option,
output locations above all, is refused with `success: false` and one line, which the UI shows under
the form like any other refusal (Locust's UI shows only the message of a 200 answer; a 400 would
read "An unknown error occurred"); they stay as given at start-up.
A POST whose Origin (or Referer) is not the UI's own host is refused with 403, so a web page
elsewhere cannot start a swarm.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Response, jsonify, make_response, request
from tfsbench.locustfiles import config as options
from tfsbench.locustfiles.metrics import rows_to_csv
from tfsbench.locustfiles.runtime import preflight
from tfsbench.payloads.errors import InputError

logger = logging.getLogger("tfsbench.locust")

TAB_KEY = "tfs-payload"
TABLE_STRUCTURE: list[dict[str, str]] = [
    {"key": "name", "title": "Name"},
    {"key": "batch_size", "title": "Batch"},
    {"key": "requests", "title": "# Requests"},
    {"key": "failures", "title": "# Fails"},
    {"key": "request_bytes", "title": "Request bytes (mean)"},
    {"key": "raw_bytes", "title": "Raw tensor bytes (mean)"},
    {"key": "overhead_ratio", "title": "Wire/raw"},
    {"key": "response_bytes", "title": "Response bytes (mean)"},
    {"key": "requests_per_s", "title": "Requests/s (run avg)"},
    {"key": "instances_per_s", "title": "Instances/s (run avg)"},
]


# The fields of Locust's own start form (`/swarm` handles them by name).
LOCUST_FORM_FIELDS: frozenset[str] = frozenset(
    {"user_count", "spawn_rate", "host", "run_time", "profile", "user_classes", "shape_class"}
)
# Our parameters the form shows; output locations (group "output") are never among them.
WEB_FORM_OPTIONS: frozenset[str] = frozenset(o.dest for o in options.OPTIONS if o.group in ("payload", "shape"))


def refused_fields(parsed: dict[str, Any], form_keys: Any) -> list[str]:
    """Form fields Locust would copy into its options but the start form never sends: output
    paths (`tfs_result`, `csv_prefix`, `html_file`, ...) and every other start-up option."""
    allowed = LOCUST_FORM_FIELDS | WEB_FORM_OPTIONS
    return sorted({k for k in form_keys if k in parsed and k not in allowed})


def cross_origin(headers: Any, own_host: str) -> str | None:
    """The foreign origin of a request, or None when it comes from the UI's own page (or from a
    client that sends neither Origin nor Referer, such as curl, which no web page can be)."""
    source = headers.get("Origin") or headers.get("Referer")
    if not source:
        return None
    if source == "null":
        return source
    netloc = urlsplit(source).netloc
    return None if netloc and netloc.lower() == own_host.lower() else source


def _elapsed(state: Any) -> float | None:
    if not state.started_at:
        return None
    return (state.stopped_at or time.time()) - state.started_at


def form_options(environment: Any, form: Any) -> dict[str, Any]:
    """Locust's parsed options overlaid with the start form's values (what the run will use)."""
    merged = dict(vars(environment.parsed_options)) if environment.parsed_options else {}
    for key in options.OPTION_BY_DEST:
        if key in form:
            merged[key] = form.get(key)
    return merged


def check_form(environment: Any, form: Any) -> options.UserConfig:
    """Raise InputError with one line if the run cannot start as the form says."""
    merged = form_options(environment, form)
    cfg = options.user_config(merged)
    options.shape_config(merged)
    host = options.check_host(form.get("host") or environment.host)
    preflight(host, cfg)
    return cfg


def install(
    environment: Any,
    state: Any,
    select_kind: Callable[[Any, str], None] | None = None,
) -> None:
    web_ui = environment.web_ui
    app = web_ui.app
    web_ui.template_args["extended_tabs"] = [{"title": "Payload", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": TAB_KEY, "structure": TABLE_STRUCTURE}]
    web_ui.template_args["extended_csv_files"] = [
        {"href": "./tfs/payload.csv", "title": "Download payload-size statistics CSV"}
    ]

    @app.before_request
    def _check_origin() -> Response | None:
        if request.method != "POST":
            return None
        foreign = cross_origin(request.headers, request.host)
        if foreign is None:
            return None
        message = f"refused: a POST from {foreign[:200]!r}, not from this web UI ({request.host})"
        logger.error("%s", message)
        resp = jsonify({"success": False, "message": message, "host": environment.host})
        resp.status_code = 403
        return resp

    @app.before_request
    def _check_swarm() -> Response | None:
        if request.method != "POST" or not request.path.rstrip("/").endswith("/swarm"):
            return None
        parsed = vars(environment.parsed_options) if environment.parsed_options else {}
        refused = refused_fields(parsed, request.form.keys())
        if refused:
            message = (
                f"refused: {', '.join(refused)[:300]} cannot be set from the web UI "
                "(output locations and start-up options are fixed when Locust starts)"
            )
            logger.error("%s", message)
            return jsonify({"success": False, "message": message, "host": environment.host})
        running = environment.runner is not None and environment.runner.state in ("spawning", "running")
        try:
            cfg = check_form(environment, request.form)
        except InputError as exc:
            logger.error("not starting: %s", exc)
            return jsonify({"success": False, "message": str(exc), "host": environment.host})
        if select_kind is not None and not running:
            select_kind(environment, cfg.kind)
        return None

    @app.after_request
    def _add_payload_rows(response: Response) -> Response:
        if not request.path.rstrip("/").endswith("/stats/requests") or response.status_code != 200:
            return response
        try:
            doc = json.loads(response.get_data())
        except ValueError:
            return response
        rows = [r.ui_dict() for r in state.metrics.rows(_elapsed(state))]
        doc["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        response.set_data(json.dumps(doc))
        return response

    @app.route("/tfs/payload.csv")
    def _payload_csv() -> Response:
        resp = make_response(rows_to_csv(state.metrics.rows(_elapsed(state))))
        resp.headers["Content-Type"] = "text/csv"
        resp.headers["Content-Disposition"] = "attachment;filename=payload.csv"
        return resp

    @app.route("/tfs/payload.json")
    def _payload_json() -> Response:
        return jsonify([r.ui_dict() for r in state.metrics.rows(_elapsed(state))])
