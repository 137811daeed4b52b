"""The shared payload flags other commands reuse (parsed in-process; the CLI tests run subprocesses)."""

from __future__ import annotations

import argparse

import pytest
from tfsbench.payloads.errors import InputError
from tfsbench.payloads.metadata_fetch import metadata_url
from tfsbench.payloads.spec import PayloadSpec

from tfsbench.commands._payload_args import add_payload_arguments, payload_spec_from_args


class Raising(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def parser(multi: bool = False) -> argparse.ArgumentParser:
    p = Raising()
    add_payload_arguments(p, multi=multi)
    return p


def test_defaults_give_the_default_spec():
    assert payload_spec_from_args(parser().parse_args([])) == PayloadSpec("numeric", 1)


def test_every_flag_reaches_the_spec():
    args = parser().parse_args([
        "--kind", "auto", "--batch-size", "8", "--format", "columnar", "--seed", "3", "--signature", "s",
        "--text-words", "4-9", "--image-size", "64x32", "--image-format", "png", "--image-quality", "70",
        "--image-style", "noise", "--numeric-shape", "28,28", "--numeric-dtype", "int64", "--numeric-dist",
        "normal", "--shape", "image=1,224,224,3", "--shape", "ids=16", "--allow-nan", "--gzip",
        "--input-name", "x",
    ])
    spec = payload_spec_from_args(args)
    assert spec == PayloadSpec(
        kind="auto", batch_size=8, format="columnar", seed=3, signature_name="s", text_words=(4, 9),
        image_size=(64, 32), image_format="png", image_quality=70, image_style="noise", numeric_shape=(28, 28),
        numeric_dtype="int64", numeric_dist="normal", input_name="x",
        shape_overrides={"image": (1, 224, 224, 3), "ids": (16,)}, allow_nan=True, gzip=True,
    )
    assert args.pool_size == 64


def test_multi_lists_and_overrides():
    args = parser(multi=True).parse_args(["--kind", "text,image", "--batch-size", "1,8", "--format", "row,columnar"])
    assert args.kind == ("text", "image") and args.batch_size == (1, 8)
    spec = payload_spec_from_args(args, kind="image", batch_size=8, fmt="columnar")
    assert (spec.kind, spec.batch_size, spec.format) == ("image", 8, "columnar")
    with pytest.raises(InputError, match="--kind lists several values"):
        payload_spec_from_args(args)


def test_flags_a_command_already_has_are_kept():
    p = Raising()
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--pool-size", type=int, default=None)
    added = add_payload_arguments(p, skip=("--seed", "--pool-size"))
    assert not {"--seed", "--pool-size"} & {flag for a in added for flag in a.option_strings}
    args = p.parse_args(["--seed", "9"])
    assert args.seed == 9 and args.pool_size is None


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--image-size", "8193x8"], "8192"),
        (["--shape", "x=0,3"], "must be >= 1"),
        (["--numeric-shape", "a"], "dims"),
        (["--text-words", "0"], "MIN-MAX"),
        (["--batch-size", "x"], "positive integer"),
    ],
)
def test_validators(argv, needle):
    with pytest.raises(ValueError, match=needle):
        parser().parse_args(argv)


def test_duplicate_shape_and_metadata_url():
    args = parser().parse_args(["--shape", "x=1", "--shape", "x=2"])
    with pytest.raises(InputError, match="given twice"):
        payload_spec_from_args(args)
    assert metadata_url("http://h:8501/", "my model", version=3) == "http://h:8501/v1/models/my%20model/versions/3/metadata"
    assert metadata_url("http://h:8501", "m", label="stable") == "http://h:8501/v1/models/m/labels/stable/metadata"
    with pytest.raises(InputError, match="not both"):
        metadata_url("http://h", "m", version=1, label="x")
