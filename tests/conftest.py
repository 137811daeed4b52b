"""Shared fixtures: an embedded TF Serving-compatible target on 127.0.0.1, port 0.

- `tfs_url`: session-wide base URL ("http://127.0.0.1:PORT") of the three demo models
  (numeric, text, image; versions 1 and 2; label stable -> 1), default options.
- `tfs_server(**options)`: factory for a dedicated server with custom options, stopped at the end of
  the test. Options are `tfsbench.server.options.make_options` keywords, strings parsed as on the command line:
  `tfs_server(enable_cors=True)`, `tfs_server(faults="status=503:0.1,seed=3")`,
  `tfs_server(batching="max_batch_size=8,batch_timeout_micros=2000")`, `tfs_server(service_time="exp:5ms")`,
  `tfs_server(num_threads=4, timeout_ms=500)`, `tfs_server(max_body_bytes=1024)`, `tfs_server(port=N)` (restart
  on a known port), `tfs_server(registry=ModelRegistry(...))`. It returns the base URL.

Process helpers (`cli`, `run_tfsbench`, `free_port`, `kill_group`, `popen_group`) live in tests/helpers.py and
are re-exported here; test modules import them with `from helpers import ...` (docs/testing.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers import CliOutcome, cli, free_port, kill_group, popen_group, run_tfsbench  # noqa: E402

__all__ = ["CliOutcome", "cli", "free_port", "kill_group", "popen_group", "run_tfsbench"]


@pytest.fixture(scope="session")
def tfs_url() -> Iterator[str]:
    from tfsbench.server.testing import serve_in_thread

    with serve_in_thread() as base_url:
        yield base_url


@pytest.fixture
def tfs_server() -> Iterator[Callable[..., str]]:
    from tfsbench.server.testing import ServerThread

    started: list[ServerThread] = []

    def start(**options: object) -> str:
        server = ServerThread(**options)
        server.start()
        started.append(server)
        return server.base_url

    try:
        yield start
    finally:
        for server in started:
            server.stop()
