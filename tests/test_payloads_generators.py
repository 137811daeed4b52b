"""Generators, pools and size accounting: every kind x format parsed back and checked."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json

import numpy as np
import pytest
from PIL import Image
from tfsbench.payloads.codec import decode_request
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.generators import WORDS, make_generator
from tfsbench.payloads.pool import build_pool
from tfsbench.payloads.signature import SignatureSpec, parse_metadata
from tfsbench.payloads.sizes import measure, size_table
from tfsbench.payloads.spec import PayloadSpec

from tests.test_payloads_signature import MULTI, SINGLE, UNKNOWN_RANK, document, tensor

KIND_SIGNATURE = {
    "numeric": ("features", "DT_FLOAT", (-1, 4)),
    "text": ("text", "DT_STRING", (-1, 1)),
    "image": ("image_bytes", "DT_STRING", (-1,)),
}


def signature_for(pool_spec: PayloadSpec) -> dict[str, SignatureSpec]:
    gen = make_generator(pool_spec)
    return {"serving_default": SignatureSpec("serving_default", gen.input_specs, ())}


def instances_of(doc: dict) -> list:
    return doc["instances"] if "instances" in doc else doc["inputs"]


@pytest.mark.parametrize("fmt", ["row", "columnar"])
@pytest.mark.parametrize("kind", ["numeric", "text", "image"])
def test_every_kind_and_format_parses_back(kind, fmt):
    spec = PayloadSpec(kind, batch_size=3, format=fmt, image_size=(40, 24), seed=5)
    pool = build_pool(spec, size=4)
    name, dtype, shape = KIND_SIGNATURE[kind]
    sigs = signature_for(spec)
    assert sigs["serving_default"].inputs[0].name == name
    assert sigs["serving_default"].inputs[0].dtype == dtype
    assert sigs["serving_default"].inputs[0].shape == shape
    assert len(pool.bodies) == 4 and pool.batch_size == 3 and pool.name == f"{kind} b=3 {fmt}"
    for body, size in zip(pool.bodies, pool.sizes, strict=True):
        doc = json.loads(body)
        assert set(doc) == {"instances" if fmt == "row" else "inputs"}
        assert len(instances_of(doc)) == 3
        decoded = decode_request(body, sigs)
        assert decoded.format == fmt and decoded.batch_size == 3
        arr = decoded.inputs[name]
        assert arr.shape == (3, *shape[1:])
        assert arr.dtype == (np.float32 if kind == "numeric" else object)
        assert size.wire_bytes == len(body)
        if kind == "numeric":
            assert size.raw_bytes == 3 * 4 * 4
            assert ((arr >= 0) & (arr < 1)).all()
        if kind == "text":
            assert size.raw_bytes == sum(len(v) for v in arr.reshape(-1))
            for value in arr.reshape(-1):
                assert 8 <= len(value.decode("utf-8").split(" ")) <= 32
        if kind == "image":
            items = instances_of(doc)
            assert all(set(item) == {"b64"} for item in items)
            files = [base64.b64decode(item["b64"], validate=True) for item in items]
            assert files == list(arr)
            assert size.raw_bytes == sum(len(f) for f in files)
            assert size.b64_bytes == sum(len(item["b64"]) for item in items)
            assert 0.9 < size.b64_share < 1
            for data in files:
                with Image.open(io.BytesIO(data)) as img:
                    assert img.format == "JPEG" and img.size == (40, 24) and img.mode == "RGB"


def test_same_seed_same_bytes_other_seed_different():
    for kind in ("numeric", "text", "image"):
        spec = PayloadSpec(kind, batch_size=2, image_size=(16, 16))
        assert build_pool(spec, 3).bodies == build_pool(spec, 3).bodies
        other = build_pool(dataclasses.replace(spec, seed=1), 3).bodies
        assert other != build_pool(spec, 3).bodies
        assert len(set(build_pool(spec, 3).bodies)) == 3  # distinct bodies within a pool


def test_image_pool_at_batch_one_has_distinct_bodies():
    pool = build_pool(PayloadSpec("image", batch_size=1, image_size=(12, 12)), 64)
    assert len(set(pool.bodies)) == 64
    pool = build_pool(PayloadSpec("image", batch_size=2, image_size=(12, 12)), 64)
    assert len(set(pool.bodies)) == 64


def test_gzip_pool_sends_compressed_bodies_and_accounts_for_them():
    spec = PayloadSpec("text", batch_size=8, gzip=True)
    pool = build_pool(spec, 4)
    plain = build_pool(dataclasses.replace(spec, gzip=False), 4)
    assert pool.content_encoding == "gzip" and plain.content_encoding is None
    assert pool.headers["Content-Encoding"] == "gzip"
    for body, plain_body, size in zip(pool.bodies, plain.bodies, pool.sizes, strict=True):
        assert gzip.decompress(body) == plain_body
        assert size.gzip_bytes == len(body) and size.wire_bytes == len(plain_body)
    assert pool.mean_wire_bytes == sum(len(b) for b in pool.bodies) / 4
    assert pool.wire_bytes == tuple(len(b) for b in pool.bodies)


def test_measure_ratios():
    info = measure(b"x" * 100, raw_bytes=50, b64_bytes=25)
    assert info.wire_bytes == 100 and info.overhead_ratio == 2.0 and info.b64_share == 0.25
    assert info.gzip_bytes == len(gzip.compress(b"x" * 100, mtime=0))


def test_text_words_non_ascii_and_fixed_length():
    pool = build_pool(PayloadSpec("text", batch_size=16, text_words=(5, 5), format="columnar"), 4)
    texts = [t[0] for body in pool.bodies for t in json.loads(body)["inputs"]]
    assert all(len(t.split(" ")) == 5 for t in texts)
    joined = " ".join(texts)
    assert any(ord(ch) > 127 for ch in joined)
    assert set(joined.split(" ")) <= set(WORDS)
    assert any(w in WORDS for w in ("日本語", "café", "über", "😀"))


def test_text_file_lines(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("first line\n\n  second é line  \nthird 日本\n", encoding="utf-8")
    pool = build_pool(PayloadSpec("text", batch_size=20, text_file=str(path)), 2)
    seen = {t[0] for body in pool.bodies for t in json.loads(body)["instances"]}
    assert seen <= {"first line", "second é line", "third 日本"} and len(seen) >= 2


@pytest.mark.parametrize(
    "content,message",
    [(b"\xff\xfe\x00bad", "not UTF-8"), (b"\n  \n", "no non-empty lines")],
)
def test_text_file_bad(tmp_path, content, message):
    path = tmp_path / "t.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        build_pool(PayloadSpec("text", batch_size=1, text_file=str(path)), 1)
    with pytest.raises(InputError, match="cannot read"):
        build_pool(PayloadSpec("text", batch_size=1, text_file=str(tmp_path / "missing.txt")), 1)


def test_image_png_noise_and_photo_sizes():
    def mean_file(style: str, fmt: str) -> float:
        pool = build_pool(PayloadSpec("image", batch_size=4, image_style=style, image_format=fmt), 2)
        return sum(s.raw_bytes for s in pool.sizes) / 8

    photo, noise = mean_file("photo", "jpeg"), mean_file("noise", "jpeg")
    assert 1000 < photo < 12000  # a 128x128 q85 JPEG of a smooth scene
    assert noise > 2.5 * photo  # noise does not compress
    pool = build_pool(PayloadSpec("image", batch_size=1, image_format="png", image_size=(20, 30)), 1)
    data = base64.b64decode(json.loads(pool.bodies[0])["instances"][0]["b64"])
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == (20, 30)


def test_image_dir_files_sent_as_is(tmp_path):
    files = {}
    for i, (fmt, suffix) in enumerate((("JPEG", ".jpg"), ("PNG", ".png"))):
        buf = io.BytesIO()
        Image.new("RGB", (10 + i, 7), (i * 100, 20, 30)).save(buf, format=fmt)
        (tmp_path / f"img{i}{suffix}").write_bytes(buf.getvalue())
        files[buf.getvalue()] = True
    (tmp_path / "notes.txt").write_text("ignored")
    pool = build_pool(PayloadSpec("image", batch_size=10, image_dir=str(tmp_path)), 2)
    sent = {base64.b64decode(i["b64"]) for body in pool.bodies for i in json.loads(body)["instances"]}
    assert sent == set(files)


def test_image_dir_bad(tmp_path):
    with pytest.raises(InputError, match="not a directory"):
        build_pool(PayloadSpec("image", batch_size=1, image_dir=str(tmp_path / "nope")), 1)
    with pytest.raises(InputError, match="no .jpg, .jpeg or .png files"):
        build_pool(PayloadSpec("image", batch_size=1, image_dir=str(tmp_path)), 1)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.jpg is not a readable image"):
        build_pool(PayloadSpec("image", batch_size=1, image_dir=str(tmp_path)), 1)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
@pytest.mark.parametrize("dist", ["uniform", "normal"])
def test_numeric_dtypes_shapes_and_distributions(dtype, dist):
    spec = PayloadSpec("numeric", batch_size=4, numeric_shape=(2, 3), numeric_dtype=dtype, numeric_dist=dist)
    pool = build_pool(spec, 2)
    decoded = decode_request(pool.bodies[0], signature_for(spec))
    arr = decoded.inputs["features"]
    assert arr.shape == (4, 2, 3) and arr.dtype == np.dtype(dtype)
    assert pool.sizes[0].raw_bytes == 4 * 6 * np.dtype(dtype).itemsize
    if dist == "normal" and dtype.startswith("float"):
        assert (arr < 0).any()


def test_numeric_rows_from_npy_and_csv(tmp_path):
    rows = np.arange(15, dtype=np.float64).reshape(5, 3) / 4
    np.save(tmp_path / "rows.npy", rows)
    (tmp_path / "rows.csv").write_text("a,b,c\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    for name in ("rows.npy", "rows.csv"):
        spec = PayloadSpec("numeric", batch_size=6, numeric_file=str(tmp_path / name))
        pool = build_pool(spec, 2)
        got = np.array(json.loads(pool.bodies[0])["instances"])
        assert got.shape == (6, 3)
        assert {tuple(r) for r in got.tolist()} <= {tuple(r) for r in rows.astype(np.float32).tolist()}
        assert pool.notes and "5 rows" in pool.notes[0]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("bad.npy", b"\x93NUMPY garbage", "not a readable .npy"),
        ("rows.csv", b"1,2,3\n4,x,6\n", "line 2 has a non-numeric value"),
        ("rows.csv", b"1,2,3\n4,5\n", "line 2 has 2 columns, expected 3"),
        ("rows.csv", b"", "no numeric rows"),
        ("rows.txt", b"1,2", "expected a .npy or .csv file"),
    ],
)
def test_numeric_file_bad(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=message):
        build_pool(PayloadSpec("numeric", batch_size=1, numeric_file=str(tmp_path / name)), 1)


def test_numeric_file_object_npy_and_nan_rows(tmp_path):
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(InputError, match="not numeric"):
        build_pool(PayloadSpec("numeric", batch_size=1, numeric_file=str(tmp_path / "s.npy")), 1)
    np.save(tmp_path / "nan.npy", np.full((2, 4), np.nan))
    spec = PayloadSpec("numeric", batch_size=1, numeric_file=str(tmp_path / "nan.npy"))
    with pytest.raises(InputError, match="NaN or Infinity"):
        build_pool(spec, 1)
    body = build_pool(dataclasses.replace(spec, allow_nan=True), 1).bodies[0]
    assert body == b'{"instances":[[NaN,NaN,NaN,NaN]]}'


def test_fixed_kind_against_metadata_fits_or_names_the_mismatch():
    meta = parse_metadata(SINGLE)
    pool = build_pool(PayloadSpec("numeric", batch_size=2), 1, meta)
    assert decode_request(pool.bodies[0], meta.signatures).inputs["features"].shape == (2, 4)
    with pytest.raises(InputError, match=r"per-instance shape \[5\] does not fit the signature shape \[-1,4\]"):
        build_pool(PayloadSpec("numeric", batch_size=2, numeric_shape=(5,)), 1, meta)
    with pytest.raises(InputError, match="is DT_STRING but the signature says DT_FLOAT"):
        build_pool(PayloadSpec("text", batch_size=2), 1, meta)


# ---- kind auto ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_auto_multi_input_signature(fmt):
    meta = parse_metadata(MULTI)
    spec = PayloadSpec("auto", batch_size=3, format=fmt, image_size=(8, 8), shape_overrides={"ids": (5,)})
    # 'scale' is a scalar input (shape []), which only the columnar format can carry.
    if fmt == "row":
        with pytest.raises(InputError, match="'scale' is a scalar in the signature.*--format columnar"):
            make_generator(spec, meta)
        return
    gen = make_generator(spec, meta)
    assert gen.binary_inputs == frozenset({"image_bytes"})
    pool = build_pool(spec, 2, meta)
    decoded = decode_request(pool.bodies[0], meta.signatures)
    got = decoded.inputs
    assert got["image_bytes"].shape == (3,) and got["image_bytes"].dtype == object
    with Image.open(io.BytesIO(got["image_bytes"][0])) as img:
        assert img.size == (8, 8)
    assert got["ids"].shape == (3, 5) and got["ids"].dtype == np.int64
    assert got["mask"].shape == (3, 8) and got["mask"].dtype == np.bool_
    assert got["scale"].shape == () and got["scale"].dtype == np.float64
    assert got["count"].shape == (3, 1) and got["count"].dtype == np.int32


def test_auto_text_signature_and_signature_name():
    meta = parse_metadata(MULTI)
    spec = PayloadSpec("auto", batch_size=2, signature_name="embed")
    pool = build_pool(spec, 1, meta)
    doc = json.loads(pool.bodies[0])
    assert doc["signature_name"] == "embed"
    assert all(isinstance(item[0], str) for item in doc["instances"])
    assert decode_request(pool.bodies[0], meta.signatures).signature.name == "embed"


def test_auto_unknown_rank_and_unknown_dims_are_resolved_and_noted():
    meta = parse_metadata(UNKNOWN_RANK)
    gen = make_generator(PayloadSpec("auto", batch_size=2), meta)
    assert gen.batch(2, np.random.default_rng(0))["x"].shape == (2,)
    assert any("unknown rank" in n for n in gen.notes)
    gen = make_generator(PayloadSpec("auto", batch_size=2, shape_overrides={"x": (3, 2)}), meta)
    assert gen.batch(2, np.random.default_rng(0))["x"].shape == (2, 3, 2)
    pixels = parse_metadata(document({"serving_default": {
        "inputs": {"image": tensor("DT_FLOAT", [-1, -1, -1, 3], "i:0"), "tokens": tensor("DT_INT32", [-1, -1], "t:0")},
        "outputs": {}, "method_name": "tensorflow/serving/predict"}}))
    gen = make_generator(PayloadSpec("auto", batch_size=2, image_size=(32, 16)), pixels)
    batch = gen.batch(2, np.random.default_rng(0))
    assert batch["image"].shape == (2, 16, 32, 3) and batch["image"].dtype == np.float32
    assert batch["tokens"].shape == (2, 1) and batch["tokens"].dtype == np.int32
    assert any("tokens" in n and "--shape tokens" in n for n in gen.notes)
    full = make_generator(PayloadSpec("auto", batch_size=2, shape_overrides={"image": (1, 224, 224, 3)}), pixels)
    assert full.batch(2, np.random.default_rng(0))["image"].shape == (2, 224, 224, 3)


@pytest.mark.parametrize(
    "overrides,batch,message",
    [
        ({"features": (5,)}, 2, r"--shape features=5 does not fit the signature shape \[-1,4\]"),
        ({"features": (4, 1)}, 2, "does not fit the signature shape"),
        ({"nope": (4,)}, 2, "--shape names unknown input"),
    ],
)
def test_auto_shapes_that_do_not_fit(overrides, batch, message):
    with pytest.raises(InputError, match=message):
        make_generator(PayloadSpec("auto", batch_size=batch, shape_overrides=overrides), parse_metadata(SINGLE))


def test_auto_fixed_batch_dim_and_missing_metadata_and_dtype():
    fixed = parse_metadata(document({"serving_default": {
        "inputs": {"x": tensor("DT_FLOAT", [1, 4], "x:0")}, "outputs": {}, "method_name": "m"}}))
    assert make_generator(PayloadSpec("auto", batch_size=1), fixed).batch(1, np.random.default_rng(0))["x"].shape == (1, 4)
    with pytest.raises(InputError, match="fixed batch dim of 1"):
        make_generator(PayloadSpec("auto", batch_size=8), fixed)
    with pytest.raises(InputError, match="needs the model's metadata"):
        make_generator(PayloadSpec("auto", batch_size=1))
    half = parse_metadata(document({"serving_default": {
        "inputs": {"x": tensor("DT_HALF", [-1], "x:0")}, "outputs": {}, "method_name": "m"}}))
    with pytest.raises(InputError, match="dtype DT_HALF"):
        make_generator(PayloadSpec("auto", batch_size=1), half)


# ---- spec validation and size table ---------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"kind": "video"}, "payload kind must be one of"),
        ({"batch_size": 0}, "batch size must be an integer >= 1"),
        ({"format": "grid"}, "payload format must be one of"),
        ({"image_size": (8193, 10)}, "each side must be 1..8192"),
        ({"image_size": (0, 10)}, "each side must be 1..8192"),
        ({"image_quality": 0}, "image quality"),
        ({"text_words": (5, 2)}, "text words"),
        ({"numeric_shape": (0,)}, "numeric shape"),
        ({"numeric_shape": (100000, 100000)}, "elements per instance"),
        ({"numeric_dtype": "float16"}, "numeric dtype"),
        ({"image_style": "cartoon"}, "image style"),
        ({"seed": -1}, "seed"),
    ],
)
def test_spec_validation(kwargs, message):
    base = {"kind": "numeric", "batch_size": 1}
    with pytest.raises(InputError, match=message):
        PayloadSpec(**{**base, **kwargs})


def test_spec_is_hashable_and_frozen():
    a = PayloadSpec("auto", 2, shape_overrides={"x": (3,)})
    assert hash(a) == hash(PayloadSpec("auto", 2, shape_overrides={"x": (3,)}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.batch_size = 3  # type: ignore[misc]
    with pytest.raises(InputError, match="pool size"):
        build_pool(a, 0)


def test_size_table_rows_match_pools():
    rows = size_table(["numeric", "text"], [1, 4], ["row", "columnar"], seed=0, pool_size=2)
    assert [(r.kind, r.format, r.batch_size) for r in rows] == [
        (k, f, b) for k in ("numeric", "text") for f in ("row", "columnar") for b in (1, 4)
    ]
    num = rows[1]
    pool = build_pool(PayloadSpec("numeric", 4), 2)
    assert num.raw_bytes == 64 and num.wire_bytes == pool.mean_wire_bytes
    assert num.overhead_ratio == pytest.approx(num.wire_bytes / num.raw_bytes)


def test_auto_numeric_rows_from_file_must_fit_the_signature(tmp_path):
    meta = parse_metadata(SINGLE)
    np.save(tmp_path / "ok.npy", np.arange(12, dtype=np.float32).reshape(3, 4))
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), dtype=np.float32))
    pool = build_pool(PayloadSpec("auto", batch_size=4, numeric_file=str(tmp_path / "ok.npy")), 2, meta)
    got = decode_request(pool.bodies[0], meta.signatures).inputs["features"]
    assert got.shape == (4, 4) and set(got[:, 0].tolist()) <= {0.0, 4.0, 8.0}
    with pytest.raises(InputError, match=r"rows of shape \[5\] do not fit input 'features'"):
        build_pool(PayloadSpec("auto", batch_size=4, numeric_file=str(tmp_path / "bad.npy")), 1, meta)
    with pytest.raises(InputError, match="exactly one numeric input"):
        make_generator(PayloadSpec("auto", batch_size=1, numeric_file=str(tmp_path / "ok.npy")), parse_metadata(MULTI))


def test_fixed_string_kinds_take_the_signature_layout():
    scalar_text = parse_metadata(document({"serving_default": {
        "inputs": {"sentence": tensor("DT_STRING", [-1], "s:0")}, "outputs": {}, "method_name": "m"}}))
    pool = build_pool(PayloadSpec("text", batch_size=3), 1, scalar_text)
    doc = json.loads(pool.bodies[0])
    assert all(isinstance(item, str) for item in doc["instances"])
    assert decode_request(pool.bodies[0], scalar_text.signatures).inputs["sentence"].shape == (3,)
    pool = build_pool(PayloadSpec("image", batch_size=2, image_size=(8, 8)), 1, scalar_text)
    assert all(set(item) == {"b64"} for item in json.loads(pool.bodies[0])["instances"])


def test_large_images_are_drawn_small_then_resized():
    assert PayloadSpec("image", 1, image_size=(8192, 8192)).image_size == (8192, 8192)  # the limit is allowed
    pool = build_pool(PayloadSpec("image", batch_size=1, image_size=(2500, 12)), 1)
    data = base64.b64decode(json.loads(pool.bodies[0])["instances"][0]["b64"])
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (2500, 12)
        pixels = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert pixels.std() > 3  # noise and content, not a flat fill
