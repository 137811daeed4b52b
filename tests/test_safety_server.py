"""The embedded target is safe to leave running: local by default, bounded bodies and JSON depth,
and nothing from a request is ever evaluated, executed or written.

"Never writes or evaluates" is checked with a Python audit hook (PEP 578): while hostile requests
are served, every file opened for writing, every exec/compile of code, every process started and
every outgoing connection in the server's threads is recorded, and the record must stay empty.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from tfsbench.server.testing import ServerThread, http_request, serve_subprocess

# ---- the audit hook ----------------------------------------------------------------------------------

_RECORD: list[str] = []
_RECORDING = threading.Event()
_HOOKED = False
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC
_FORBIDDEN = ("exec", "compile", "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork",
              "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.symlink",
              "shutil.copyfile", "shutil.rmtree", "shutil.move", "pickle.find_class", "socket.connect",
              "ctypes.dlopen")


def _hook(event: str, args: tuple) -> None:
    if not _RECORDING.is_set() or threading.current_thread() is threading.main_thread():
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, 0))[:3]
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & _WRITE_FLAGS):
            _RECORD.append(f"open {path!r} mode={mode!r} flags={flags!r}")
    elif event in _FORBIDDEN or event.startswith(("os.exec", "os.spawn", "subprocess.")):
        _RECORD.append(f"{event} {str(args)[:200]}")


def _install_hook() -> None:
    global _HOOKED
    if not _HOOKED:  # audit hooks cannot be removed: install once, switch with _RECORDING
        sys.addaudithook(_hook)
        _HOOKED = True


@pytest.fixture
def guarded_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _install_hook()
    monkeypatch.chdir(tmp_path)  # a relative write would land here
    server = ServerThread(max_body_bytes=64 * 1024, max_decompressed_bytes=1024 * 1024, max_json_depth=32)
    server.start()
    try:
        yield server.base_url
    finally:
        _RECORDING.clear()
        server.stop()


NUMERIC = b'{"instances": [[1.0, 2.0, 3.0, 4.0]]}'
PAYLOAD = "__import__('os').system('touch pwned')"


def _hostile_requests() -> list[tuple[str, str, bytes | None, dict[str, str]]]:
    deep = b'{"instances": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}"
    nested_32 = b'{"instances": [' + b"[" * 40 + b"1.0" + b"]" * 40 + b"]}"
    return [
        ("POST", "/v1/models/numeric:predict", NUMERIC, {}),
        ("POST", "/v1/models/text:predict", json.dumps({"instances": [[PAYLOAD], ["{{7*7}}"], ["${jndi:x}"]]}).encode(), {}),
        ("POST", "/v1/models/image:predict", json.dumps({"instances": [{"b64": "eval('1')"}]}).encode(), {}),
        ("POST", "/v1/models/numeric:predict", json.dumps({"signature_name": "../../etc/passwd",
                                                           "instances": [[1, 2, 3, 4]]}).encode(), {}),
        ("POST", "/v1/models/..%2F..%2Fetc%2Fpasswd:predict", NUMERIC, {}),
        ("POST", "/v1/models/numeric/versions/1:predict/../../../x", NUMERIC, {}),
        ("GET", "/v1/models/" + "%2e%2e%2f" * 8 + "etc/passwd", None, {}),
        ("GET", "/v1/models/numeric/metadata", None, {}),
        ("GET", "/monitoring/prometheus/metrics", None, {}),
        ("POST", "/v1/models/numeric:predict", deep, {}),
        ("POST", "/v1/models/numeric:predict", nested_32, {}),
        ("POST", "/v1/models/numeric:predict", b"x" * (128 * 1024), {}),
        ("POST", "/v1/models/numeric:predict", gzip.compress(b" " * (2 * 1024 * 1024)),
         {"Content-Encoding": "gzip"}),
        ("POST", "/v1/models/numeric:predict", b"\xff\xfe\x00garbage", {}),
        ("POST", "/v1/models/numeric:predict", b'{"instances": [[NaN, Infinity, 1e999, -1e999]]}', {}),
        ("PUT", "/v1/models/numeric:predict", NUMERIC, {}),
        ("DELETE", "/v1/models/numeric", None, {}),
        ("POST", "/v1/models/numeric:classify", b'{"examples": [{"x": [1.0]}]}', {}),
        ("POST", "/v1/models/numeric:regress", b'{"examples": [{"x": [1.0]}]}', {}),
        ("POST", "/v1/models/numeric:predict", b'{"instances": [[1,2,3,4]], "__class__": "os.system"}', {}),
    ]


def _send_all(url: str) -> list[int]:
    statuses = []
    for method, path, body, headers in _hostile_requests():
        status, _, _ = http_request(url, method, path, body, headers, timeout_s=30)
        statuses.append(status)
    return statuses


def test_hostile_requests_are_answered_and_nothing_is_written_or_run(guarded_server: str, tmp_path: Path) -> None:
    first = _send_all(guarded_server)  # warms every lazily imported code path
    _RECORD.clear()
    _RECORDING.set()
    second = _send_all(guarded_server)
    _RECORDING.clear()
    assert second == first  # same answers every time: nothing accumulated from the first pass
    assert all(s < 500 for s in second), second  # refused as bad input, never a server error
    assert second[0] == 200 and second[1] == 200  # the text model took the "code" as strings
    assert second[9] == 400  # 5000 levels deep: refused by the JSON parser's own limit
    assert second[10] == 400  # 40 levels > --max-json-depth 32
    assert second[11] == 413  # 128 KiB > --max-body-bytes 64 KiB
    assert second[12] == 413  # gzip that inflates past the cap (1 MiB here; TF Serving's is 100 MiB)
    assert _RECORD == [], _RECORD
    assert list(tmp_path.iterdir()) == []
    status, _, body = http_request(guarded_server, "POST", "/v1/models/numeric:predict", NUMERIC)
    assert status == 200 and "predictions" in json.loads(body)  # still serving


def test_the_audit_hook_would_see_a_write(guarded_server: str, tmp_path: Path) -> None:
    """The hook watches other threads: a write from one shows up in the record."""
    _RECORD.clear()
    _RECORDING.set()
    t = threading.Thread(target=lambda: (tmp_path / "written.txt").write_text("x"))
    t.start()
    t.join()
    _RECORDING.clear()
    assert any("written.txt" in r for r in _RECORD), _RECORD
    _RECORD.clear()


def _listening_addresses(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on `port`, from /proc/net/tcp and tcp6 (Linux)."""
    found = []
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if fields[3] == "0A" and int(hexport, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr)
                if width == 8:
                    found.append(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.append(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_tfsbench_serve_binds_loopback_only_by_default() -> None:
    with serve_subprocess() as url:
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        addresses = _listening_addresses(parts.port or 0)
    assert addresses and all(a in ("127.0.0.1", "::1") for a in addresses), addresses


def test_the_fixture_server_binds_loopback_too() -> None:
    server = ServerThread()
    server.start()
    try:
        parts = urlsplit(server.base_url)
        addresses = _listening_addresses(parts.port or 0)
    finally:
        server.stop()
    assert parts.hostname == "127.0.0.1"
    assert addresses == ["127.0.0.1"], addresses
