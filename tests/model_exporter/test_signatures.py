"""The published SavedModel, loaded as TF Serving loads it, honours the signature contract."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mnist_exporter.saved_model import EXPECTED_SIGNATURES
from mnist_exporter.validation import run_gate, signature_problems
from tests.model_exporter.exporter_helpers import validation_digits


def _spec(spec):
    return tf.as_dtype(spec.dtype), tf.TensorShape(spec.shape).as_list()


def test_exactly_the_two_signatures(loaded_version):
    assert set(loaded_version.signatures) == {"serving_default", "predict_image_bytes"}


@pytest.mark.parametrize(
    "signature, input_name, input_dtype, input_shape",
    [
        ("serving_default", "images", tf.float32, [None, 28, 28]),
        ("predict_image_bytes", "image_bytes", tf.string, [None]),
    ],
)
def test_signature_inputs_and_outputs(loaded_version, signature, input_name, input_dtype, input_shape):
    function = loaded_version.signatures[signature]
    _, inputs = function.structured_input_signature
    assert {name: _spec(spec) for name, spec in inputs.items()} == {input_name: (input_dtype, input_shape)}
    outputs = {name: _spec(spec) for name, spec in function.structured_outputs.items()}
    assert outputs == {"probabilities": (tf.float32, [None, 10]), "classes": (tf.int64, [None])}
    assert signature_problems(loaded_version) == []


def test_both_signatures_agree_on_the_same_digits(loaded_version, data_dir):
    images, labels = validation_digits(data_dir, 64)
    direct = loaded_version.signatures["serving_default"](images=tf.constant(images / 255.0, tf.float32))
    encoded = tf.constant([tf.io.encode_png(image[..., None]).numpy() for image in images])
    via_bytes = loaded_version.signatures["predict_image_bytes"](image_bytes=encoded)

    probabilities = direct["probabilities"].numpy()
    assert probabilities.shape == (64, 10) and via_bytes["classes"].numpy().shape == (64,)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(direct["classes"].numpy(), probabilities.argmax(axis=1))
    np.testing.assert_array_equal(via_bytes["classes"].numpy(), direct["classes"].numpy())
    np.testing.assert_allclose(via_bytes["probabilities"].numpy(), probabilities, atol=1e-4)
    # a trained model, not noise: most of these digits are right
    assert np.mean(direct["classes"].numpy() == labels) > 0.6


def test_image_bytes_accepts_jpeg_rgb_and_other_sizes(loaded_version, data_dir):
    """Decoding, grayscale conversion and resizing happen inside the graph."""
    images, _ = validation_digits(data_dir, 3)
    digit = images[0]
    direct = loaded_version.signatures["serving_default"](images=tf.constant(digit[None] / 255.0, tf.float32))
    expected_class = int(direct["classes"].numpy()[0])

    big_rgb = tf.image.resize(tf.repeat(digit[..., None], 3, axis=-1), [112, 112], method="nearest")
    big_rgb = tf.cast(big_rgb, tf.uint8)
    requests = [
        tf.io.encode_jpeg(digit[..., None], quality=95).numpy(),  # JPEG, grayscale
        tf.io.encode_png(big_rgb).numpy(),  # PNG, RGB, 4x larger
    ]
    outputs = loaded_version.signatures["predict_image_bytes"](image_bytes=tf.constant(requests))
    assert outputs["probabilities"].shape == (2, 10)
    assert outputs["classes"].numpy().tolist() == [expected_class, expected_class]


def test_signature_check_names_every_difference(tmp_path):
    """The gate's signature check catches wrong dtypes, shapes, names and missing signatures."""

    class Wrong(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 784], tf.float64, name="images")])
        def predict(self, images):
            return {
                "probabilities": tf.zeros([tf.shape(images)[0], 10], tf.float32),
                "classes": tf.zeros([tf.shape(images)[0]], tf.int32),
            }

    module = Wrong()
    tf.saved_model.save(module, str(tmp_path / "wrong"), signatures={"serving_default": module.predict})
    problems = signature_problems(tf.saved_model.load(str(tmp_path / "wrong")))

    # the gate stops at this check and reports it, naming the check
    images = np.zeros([20, 28, 28], np.uint8)
    report = run_gate(
        str(tmp_path / "wrong"),
        images,
        np.zeros([20], np.uint8),
        min_accuracy=0.5,
        max_regression=0.005,
        baseline=None,
        force=False,
        warmup_path="unused",
    )
    assert not report.passed and len(report.failures) == 1
    assert report.failures[0].startswith("signatures: ") and "float64" in report.failures[0]
    text = "\n".join(problems)
    assert "input 'images' is float64 [None, 784], expected float32 [None, 28, 28]" in text
    assert "output 'classes' is int32 [None], expected int64 [None]" in text
    assert "signature 'predict_image_bytes' is missing" in text
    assert len(problems) == 3
    assert set(EXPECTED_SIGNATURES) == {"serving_default", "predict_image_bytes"}


def test_image_bytes_refuses_jpegs_of_too_much_decoding_work(loaded_version):
    """What the real TF Serving runs: the graph counts a JPEG's start-of-scan markers before
    decode_image and refuses more than MAX_JPEG_SCANS, or scans x pixels over the budget
    (a 120 KB progressive JPEG of 2,400 scans took 7.5-20 s to decode before)."""
    from mnist_common.decode_work import MAX_JPEG_SCANS
    from tests.support import image_bombs

    function = loaded_version.signatures["predict_image_bytes"]
    for bomb, reason in (
        (image_bombs.jpeg_scan_bomb(64, MAX_JPEG_SCANS), "scans"),  # 6 + 32 scans of 64x64
        (image_bombs.jpeg_scan_bomb(2048, 2400), "scans"),
        (image_bombs.jpeg_scan_bomb(4096, 5), "scans times"),  # 11 scans of 4096x4096
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=reason):
            function(image_bytes=tf.constant([bomb]))
    for fine in (image_bombs.progressive_jpeg(256, "RGB"), image_bombs.progressive_jpeg(1024, "L")):
        assert function(image_bytes=tf.constant([fine]))["classes"].shape == (1,)
