"""`tfsbench payload` in a subprocess: bodies, the size table, metadata sources; every bad input in-process."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, run_tfsbench
from PIL import Image
from tfsbench.payloads.codec import decode_request
from tfsbench.payloads.signature import parse_metadata

from tests.test_payloads_signature import MULTI, SINGLE

ROOT = Path(__file__).resolve().parent.parent


def tfsbench(*args: str, timeout: float = 120, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return run_tfsbench("payload", *args, timeout=timeout, cwd=cwd, text=False)


def in_process(*args: str) -> subprocess.CompletedProcess[bytes]:
    """`tfsbench payload ARGS` through main() in this process (helpers.cli), shaped like `tfsbench()`'s result."""
    r = cli("payload", *args)
    return subprocess.CompletedProcess(["payload", *args], r.code, r.stdout.encode(), r.stderr.encode())


def assert_bad_input(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert result.stdout == b""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err  # exactly one line
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture
def single_meta(tmp_path: Path) -> str:
    path = tmp_path / "numeric.json"
    path.write_text(json.dumps(SINGLE))
    return str(path)


@pytest.mark.slow
def test_numeric_body_to_stdout_is_exactly_one_request():
    result = tfsbench("--kind", "numeric", "--batch-size", "3", "--format", "columnar", "--seed", "4")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"inputs"} and np.array(doc["inputs"]).shape == (3, 4)
    again = tfsbench("--kind", "numeric", "--batch-size", "3", "--format", "columnar", "--seed", "4")
    assert again.stdout == result.stdout


@pytest.mark.slow
def test_image_body_to_file_with_summary(tmp_path: Path):
    out = tmp_path / "body.json"
    result = tfsbench("--kind", "image", "--batch-size", "2", "--image-size", "64x32", "--image-format", "png",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert f"wrote {out.stat().st_size} bytes to {out}" in result.stderr.decode()
    items = json.loads(out.read_bytes())["instances"]
    assert len(items) == 2
    with Image.open(io.BytesIO(base64.b64decode(items[0]["b64"]))) as img:
        assert img.size == (64, 32) and img.format == "PNG"


@pytest.mark.slow
def test_gzip_body(tmp_path: Path):
    import gzip

    out = tmp_path / "body.json.gz"
    assert tfsbench("--kind", "text", "--batch-size", "4", "--gzip", "--out", str(out)).returncode == 0
    assert len(json.loads(gzip.decompress(out.read_bytes()))["instances"]) == 4


@pytest.mark.slow
def test_auto_from_metadata_file_with_shape_override(tmp_path: Path):
    path = tmp_path / "multi.json"
    path.write_text(json.dumps(MULTI))
    result = tfsbench("--kind", "auto", "--metadata", str(path), "--signature", "embed", "--batch-size", "2")
    assert result.returncode == 0, result.stderr
    decoded = decode_request(result.stdout, parse_metadata(MULTI).signatures)
    assert decoded.signature.name == "embed" and decoded.inputs["text"].shape == (2, 1)
    result = tfsbench("--kind", "auto", "--metadata", str(path), "--format", "columnar", "--batch-size", "2",
                      "--shape", "ids=1,6", "--image-size", "8x8")
    assert result.returncode == 0, result.stderr
    decoded = decode_request(result.stdout, parse_metadata(MULTI).signatures)
    assert decoded.inputs["ids"].shape == (2, 6)
    assert "note:" in result.stderr.decode()


@pytest.mark.slow
def test_auto_from_url_of_embedded_server(tfs_url: str):
    result = tfsbench("--kind", "auto", "--url", tfs_url, "--model", "image", "--batch-size", "2",
                      "--image-size", "16x16")
    assert result.returncode == 0, result.stderr
    request = urllib.request.Request(f"{tfs_url}/v1/models/image:predict", data=result.stdout,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.loads(response.read())
    assert len(answer["predictions"]) == 2
    missing = tfsbench("--kind", "auto", "--url", tfs_url, "--model", "nope")
    assert_bad_input(missing, "HTTP 404", "nope")


def test_fetch_metadata_by_version_and_label(tfs_url: str):
    from tfsbench.payloads.errors import InputError
    from tfsbench.payloads.metadata_fetch import fetch_metadata

    meta = fetch_metadata(tfs_url, "numeric", version=1)
    assert meta.model_name == "numeric" and meta.version == "1"
    assert meta.signature().input("features").shape == (-1, 4)
    assert fetch_metadata(tfs_url, "text", label="stable").signature().input("text").dtype == "DT_STRING"
    with pytest.raises(InputError, match="HTTP 404"):
        fetch_metadata(tfs_url, "numeric", version=99)


def test_size_table():
    result = tfsbench("--sizes", "--kinds", "numeric,text", "--batch-sizes", "1,8", "--formats", "row")
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    for needle in ("raw", "wire", "wire/raw", "b64 share", "gzip", "numeric", "text"):
        assert needle in out
    lines = [ln for ln in out.splitlines() if ln.startswith("│")]
    assert len(lines) == 4
    cells = [[c.strip() for c in ln.strip("│").split("│")] for ln in lines]
    numeric8 = next(c for c in cells if c[0] == "numeric" and c[2] == "8")
    assert numeric8[3] == "128 B"  # raw: 8 x 4 float32
    wire = int(numeric8[4].removesuffix(" B").replace(",", ""))
    assert numeric8[5] == f"{wire / 128:.2f}x"


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--kind", "video"], ["--kind", "invalid choice"]),
        (["--batch-size", "0"], ["--batch-size", "must be >= 1"]),
        (["--batch-size", "-3"], ["--batch-size"]),
        (["--image-size", "9000x10"], ["--image-size", "8192"]),
        (["--image-size", "big"], ["--image-size", "WIDTHxHEIGHT"]),
        (["--format", "grid"], ["--format", "invalid choice"]),
        (["--shape", "features"], ["--shape", "NAME=D1,D2"]),
        (["--text-words", "9-3"], ["--text-words"]),
        (["--sizes", "--kinds", "text,video"], ["--kinds", "unknown kind 'video'"]),
        (["--sizes", "--batch-sizes", "1,0"], ["--batch-sizes"]),
        (["--kind", "auto"], ["needs the model's metadata"]),
        (["--kind", "text", "--text-file", "/nonexistent/words.txt"], ["--text-file /nonexistent/words.txt", "cannot read"]),
        (["--kind", "numeric", "--numeric-file", "/nonexistent/rows.npy"], ["--numeric-file", "cannot read"]),
        (["--kind", "image", "--image-dir", "/nonexistent/images"], ["--image-dir", "not a directory"]),
        (["--kind", "auto", "--metadata", "/nonexistent/meta.json"], ["--metadata", "cannot read"]),
        (["--kind", "auto", "--url", "http://127.0.0.1:1", "--model", "m"], ["cannot reach http://127.0.0.1:1"]),
        (["--kind", "auto", "--url", "ftp://x", "--model", "m"], ["--url must look like"]),
        (["--kind", "auto", "--url", "http://127.0.0.1:1"], ["--url needs --model"]),
        (["--kind", "numeric", "--out", "/nonexistent/dir/body.json"], ["--out", "cannot write"]),
    ],
)
def test_bad_arguments_one_line_exit_2(args, needles):
    assert_bad_input(in_process(*args), *needles)


def test_shapes_that_do_not_fit_the_signature(single_meta: str):
    assert_bad_input(in_process("--kind", "auto", "--metadata", single_meta, "--shape", "features=5"),
                     "--shape features=5 does not fit the signature shape [-1,4]")
    assert_bad_input(in_process("--kind", "auto", "--metadata", single_meta, "--shape", "pixels=5"),
                     "--shape names unknown input(s) pixels")
    assert_bad_input(in_process("--kind", "numeric", "--numeric-shape", "7", "--metadata", single_meta),
                     "per-instance shape [7] does not fit the signature shape [-1,4]")
    assert_bad_input(in_process("--kind", "auto", "--metadata", single_meta, "--signature", "other"),
                     "signature 'other' not found")


@pytest.mark.parametrize(
    "name,content,flag,needle",
    [
        ("rows.csv", b"1,2,3,4\n1,2,oops,4\n", "--numeric-file", "line 2 has a non-numeric value"),
        ("rows.npy", b"not numpy at all", "--numeric-file", "not a readable .npy array"),
        ("words.txt", b"\xff\xfe\xfa", "--text-file", "not UTF-8 text"),
        ("meta.json", b"{not json", "--metadata", "not JSON"),
        ("meta.json", b'{"model_version_status": []}', "--metadata", "has no 'model_spec' key"),
        ("meta.json", json.dumps({"model_spec": {"name": "m"}, "metadata": {"signature_def": {}}}).encode(),
         "--metadata", "metadata.signature_def has no 'signature_def' key"),
    ],
)
def test_malformed_data_files(tmp_path: Path, name: str, content: bytes, flag: str, needle: str):
    path = tmp_path / name
    path.write_bytes(content)
    kind = {"--numeric-file": "numeric", "--text-file": "text", "--metadata": "auto"}[flag]
    assert_bad_input(in_process("--kind", kind, flag, str(path)), str(path), needle)


def test_broken_image_in_folder(tmp_path: Path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    assert_bad_input(in_process("--kind", "image", "--image-dir", str(tmp_path)), "a.jpg is not a readable image")


def test_nan_rows_need_allow_nan(tmp_path: Path):
    path = tmp_path / "nan.csv"
    path.write_text("1,2,3,nan\n")
    assert_bad_input(in_process("--kind", "numeric", "--numeric-file", str(path)), "NaN or Infinity", "--allow-nan")
    ok = tfsbench("--kind", "numeric", "--numeric-file", str(path), "--allow-nan")
    assert ok.returncode == 0 and ok.stdout == b'{"instances":[[1.0,2.0,3.0,NaN]]}'


def _readme_section() -> str:
    text = (ROOT / "docs" / "payload.md").read_text(encoding="utf-8")
    return text.split("<!-- section:payloads -->")[1].split("<!-- /section:payloads -->")[0]


def test_readme_python_example_runs():
    section = _readme_section()
    code = section.split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(compile(code, "docs/payload.md example", "exec"), namespace)
    assert namespace["pool"].batch_size == 8 and len(namespace["pool"].bodies) == 64


@pytest.mark.slow
def test_readme_offline_commands_run(tmp_path: Path):
    commands = [ln.strip() for ln in _readme_section().splitlines() if ln.strip().startswith("tfsbench payload")]
    offline = [c for c in commands if "--url" not in c and "--metadata" not in c]
    assert len(offline) >= 3
    for command in offline:
        argv = command.split()[2:]
        if ">" in argv:  # a shell redirect: check stdout instead
            argv = argv[: argv.index(">")]
        result = tfsbench(*argv, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
        if "--out" in argv:
            assert (tmp_path / argv[argv.index("--out") + 1]).stat().st_size > 0
        else:
            json.loads(result.stdout)


def test_size_table_with_auto_kind(single_meta: str):
    result = tfsbench("--sizes", "--kinds", "auto,text", "--batch-sizes", "4", "--formats", "row",
                      "--metadata", single_meta, "--pool-size", "2")
    assert result.returncode == 0, result.stderr
    rows = [[c.strip() for c in ln.strip("│").split("│")] for ln in result.stdout.decode().splitlines()
            if ln.startswith("│")]
    assert [r[0] for r in rows] == ["auto", "text"]
    assert rows[0][3] == "64 B"  # 4 x features[4] float32 from the signature
    assert "over 2 bodies" in result.stdout.decode()
    assert_bad_input(in_process("--sizes", "--kinds", "auto"), "needs the model's metadata")
