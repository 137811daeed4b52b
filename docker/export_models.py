"""Export the three demo models as TensorFlow SavedModels (needs the `tf` extra: tensorflow-cpu).

    python docker/export_models.py --out docker/models

writes docker/models/{numeric,text,image}/{1,2}/saved_model.pb (+ variables/), with exactly the demo
signatures (`serving_default`), so `tensorflow/serving` (docker/compose.yaml) serves what the
embedded target serves. `numeric` and `text` compute the same function as the numpy models in
`server/models.py` (same weights, same feature extraction; within 1e-4). `image` has the same
signature and weights, but TensorFlow's JPEG decoder and resize differ slightly from Pillow's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from tfsbench.server.models import IMAGE_SIDE, TEXT_BUCKETS, ImageModel, NumericModel, TextModel  # noqa: E402

VERSIONS = (1, 2)


def _modules(tf):  # noqa: ANN001, ANN202 - tensorflow is imported by main()
    class Numeric(tf.Module):
        def __init__(self, model: NumericModel) -> None:
            super().__init__()
            self.w1 = tf.constant(model.w1)
            self.b1 = tf.constant(model.b1)
            self.w2 = tf.constant(model.w2)
            self.b2 = tf.constant(model.b2)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def serve(self, features):  # noqa: ANN001, ANN202
            hidden = tf.nn.relu(tf.matmul(features, self.w1) + self.b1)
            return {"probabilities": tf.nn.softmax(tf.matmul(hidden, self.w2) + self.b2)}

    class Text(tf.Module):
        def __init__(self, model: TextModel) -> None:
            super().__init__()
            self.w = tf.constant(model.w)
            self.b = tf.constant(model.b)

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.string, name="text")])
        def serve(self, text):  # noqa: ANN001, ANN202
            codes = tf.strings.unicode_decode(tf.reshape(text, [-1]), "UTF-8", errors="replace")
            buckets = tf.math.floormod(codes, TEXT_BUCKETS)
            counts = tf.math.bincount(
                buckets, minlength=TEXT_BUCKETS, maxlength=TEXT_BUCKETS, axis=-1, dtype=tf.float32
            )
            lengths = tf.maximum(tf.cast(codes.row_lengths(), tf.float32), 1.0)
            features = counts / lengths[:, None]
            scores = tf.nn.softmax(tf.matmul(features, self.w) + self.b)
            return {"scores": tf.ensure_shape(scores, [None, 2])}

    class Image(tf.Module):
        def __init__(self, model: ImageModel) -> None:
            super().__init__()
            self.w = tf.constant(model.w)
            self.b = tf.constant(model.b)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def serve(self, image_bytes):  # noqa: ANN001, ANN202
            def one(blob):  # noqa: ANN001, ANN202
                image = tf.io.decode_image(blob, channels=3, expand_animations=False)
                image = tf.image.resize(tf.cast(image, tf.float32), [IMAGE_SIDE, IMAGE_SIDE], method="bilinear")
                return tf.ensure_shape(image, [IMAGE_SIDE, IMAGE_SIDE, 3])

            pixels = tf.map_fn(
                one, image_bytes, fn_output_signature=tf.TensorSpec([IMAGE_SIDE, IMAGE_SIDE, 3], tf.float32)
            )
            x = tf.reshape(pixels, [-1, IMAGE_SIDE * IMAGE_SIDE * 3]) / 255.0
            scores = tf.ensure_shape(tf.nn.softmax(tf.matmul(x, self.w) + self.b), [None, 10])
            return {"scores": scores, "classes": tf.argmax(scores, axis=1, output_type=tf.int64)}

    return {"numeric": (NumericModel, Numeric), "text": (TextModel, Text), "image": (ImageModel, Image)}


def export_all(out_dir: str | os.PathLike, models: tuple[str, ...] = ("numeric", "text", "image")) -> list[Path]:
    """Write OUT/<model>/<version>/ for every demo model and version; return the directories."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    builders = _modules(tf)
    written = []
    for name in models:
        numpy_cls, tf_cls = builders[name]
        for version in VERSIONS:
            module = tf_cls(numpy_cls(version))
            target = Path(out_dir) / name / str(version)
            tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve.get_concrete_function()})
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "models"),
                        help="directory to write <model>/<version>/ into (default docker/models)")
    parser.add_argument("--models", default="numeric,text,image", help="comma-separated subset to export")
    args = parser.parse_args(argv)
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = sorted(set(models) - {"numeric", "text", "image"})
    if unknown:
        parser.error(f"unknown model(s): {', '.join(unknown)} (numeric, text, image)")
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        print("export_models: error: needs TensorFlow: pip install 'tfsbench[tf]'", file=sys.stderr)
        return 2
    for path in export_all(args.out, models):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
