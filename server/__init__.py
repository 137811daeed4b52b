"""The embedded TF Serving-compatible target (`tfsbench serve`) and its demo models.

Modules by role: `app` (REST layer: routing, limits, CORS, faults), `registry` (models, versions,
labels, status/metadata bodies), `models` (numpy demo models), `batching` (TF Serving-like batch
scheduler), `metrics` (Prometheus page), `faults` (fault spec and injector), `options` (parsers),
`runner` (start/stop, workers), `testing` (thread/subprocess helpers for tests), `savedmodel`
(TensorFlow backend, extra `tf`), `bench_target` (how fast the target is).
"""
