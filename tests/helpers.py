"""The one home of the tests' process helpers (conftest re-exports them; import with `from helpers import ...`).

- `cli(*args)`: `tfsbench ARGS` in this process -> `CliOutcome(code, stdout, stderr)`. Use it for anything
  that only needs the exit status and the printed text: it costs milliseconds, a subprocess about 1.7 s
  of imports. An exception that escapes `main` escapes here too (a traceback is a test failure).
- `run_tfsbench(*args)`: `python -m tfsbench ARGS` as a subprocess, cwd=ROOT; one per command proves the
  wiring (entry point, exit status, streams).
- `free_port()`: a loopback port nobody listens on right now.
- `kill_group(proc)` / `popen_group(args)`: processes started in a process group of their own, killed by
  their group (the PID we started), never by name. A group, not a new session: Linux's autogroup gives
  each session an equal CPU share, so a session per server would let `make test`'s niced parallel pass
  take CPU from the timing-sensitive serial pass running beside it (docs/testing.md).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
TFSBENCH = [sys.executable, "-m", "tfsbench"]


class CliOutcome(NamedTuple):
    """What a shell would see of one `tfsbench` call: exit status and both streams."""

    code: int
    stdout: str
    stderr: str

    @property
    def returncode(self) -> int:
        """subprocess.CompletedProcess's name, so a subprocess call and `cli` read the same in a test."""
        return self.code


def free_port() -> int:
    """A free port on 127.0.0.1 (bound then released: for programs that must be told a port up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tfsbench(*args: object, timeout: float = 120.0, env: Mapping[str, str] | None = None,
                 cwd: Path | str = ROOT, input: str | None = None, text: bool = True) -> subprocess.CompletedProcess[Any]:
    """`python -m tfsbench ARGS` to completion; stdin is empty unless `input` is given; text=False: bytes."""
    return subprocess.run([*TFSBENCH, *map(str, args)], cwd=cwd, capture_output=True, text=text, timeout=timeout,
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          env=None if env is None else dict(env))


@contextlib.contextmanager
def _environ(overrides: Mapping[str, str] | None) -> Iterator[None]:
    if not overrides:
        yield
        return
    old = {k: os.environ.get(k) for k in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cli(*args: object, env: Mapping[str, str] | None = None) -> CliOutcome:
    """`tfsbench ARGS` in this process, as a shell would see it: (exit status, stdout, stderr).

    `main` returns its status; argparse exits through SystemExit (2 for usage errors, 0 for --help),
    which is caught and turned into the status the process would have had. Streams are byte-backed,
    so code writing to `sys.stdout.buffer` is captured too. `env` overrides variables for the call.
    """
    from tfsbench import cli as tfsbench_cli

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)
    with _environ(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = tfsbench_cli.main([str(a) for a in args])
        except SystemExit as exc:  # sys.exit("text") prints the text and exits 1, as the interpreter does
            if exc.code is not None and not isinstance(exc.code, int):
                print(exc.code, file=sys.stderr)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    texts = [s.buffer.getvalue().decode("utf-8", "replace") for s in (out, err)]  # type: ignore[attr-defined]
    return CliOutcome(int(code), texts[0], texts[1])


def kill_group(proc: subprocess.Popen[Any], sig: int = signal.SIGKILL, wait_s: float = 20.0) -> None:
    """Kill a process started with process_group=0 and its children (its group), by its PID."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    proc.wait(timeout=wait_s)
    log_fh = getattr(proc, "log_fh", None)
    if log_fh is not None:
        log_fh.close()


@contextlib.contextmanager
def popen_group(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[Any]]:
    """Popen in a process group of its own (stdin empty, cwd=ROOT unless given); the group is killed on exit."""
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(args, process_group=0, **kwargs)
    try:
        yield proc
    finally:
        kill_group(proc)
