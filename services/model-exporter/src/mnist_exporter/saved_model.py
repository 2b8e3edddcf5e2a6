"""Build the SavedModel that TF Serving loads: two signatures over one Keras model.

serving_default      images       float32 [-1, 28, 28] in [0, 1]
predict_image_bytes  image_bytes  string  [-1], encoded PNG or JPEG (REST sends {"b64": ...});
                                  decoded, made grayscale, resized to 28x28 and scaled to [0, 1]
                                  inside the graph, so any client can send an image file. An image
                                  whose header declares more than MAX_IMAGE_PIXELS is refused
                                  (INVALID_ARGUMENT) before it is decoded: a PNG of a few hundred KB
                                  can otherwise decode to hundreds of megapixels. So is a JPEG of
                                  more scans than MAX_JPEG_SCANS, or whose scans times pixels pass
                                  MAX_JPEG_SCAN_PIXELS (mnist_common.decode_work: a progressive
                                  JPEG of thousands of scans is seconds of decoding per 100 KB).
                                  The images of one request are decoded one after another, so a
                                  request holds one core however many images it sends.
Both return probabilities float32 [-1, 10] and classes int64 [-1].
"""

from __future__ import annotations

import tensorflow as tf

from mnist_common.decode_work import MAX_JPEG_SCAN_PIXELS, MAX_JPEG_SCANS

DEFAULT_SIGNATURE = "serving_default"
IMAGE_BYTES_SIGNATURE = "predict_image_bytes"
IMAGES_INPUT = "images"
IMAGE_BYTES_INPUT = "image_bytes"
PROBABILITIES_OUTPUT = "probabilities"
CLASSES_OUTPUT = "classes"
# The web UI's limit too (mnist_common.preprocessing.DEFAULT_MAX_PIXELS): 16 MB once decoded.
MAX_IMAGE_PIXELS = 4096 * 4096
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What the validation gate checks: {signature: ({input: (dtype, shape)}, {output: (dtype, shape)})}
EXPECTED_SIGNATURES = {
    DEFAULT_SIGNATURE: (
        {IMAGES_INPUT: (tf.float32, [None, 28, 28])},
        {PROBABILITIES_OUTPUT: (tf.float32, [None, 10]), CLASSES_OUTPUT: (tf.int64, [None])},
    ),
    IMAGE_BYTES_SIGNATURE: (
        {IMAGE_BYTES_INPUT: (tf.string, [None])},
        {PROBABILITIES_OUTPUT: (tf.float32, [None, 10]), CLASSES_OUTPUT: (tf.int64, [None])},
    ),
}


def _declared_pixels(encoded: tf.Tensor) -> tf.Tensor:
    """Width x height as the PNG or JPEG header states it, read without decoding the image."""

    def jpeg():
        shape = tf.image.extract_jpeg_shape(encoded, output_type=tf.int64)
        return shape[0] * shape[1]

    def png():
        # IHDR: big-endian uint32 width and height at bytes 16-23. Padded, so a short input
        # fails in decode_image with a clear message rather than in the slicing here.
        padded = tf.strings.join([encoded, tf.constant(b"\0" * 24)])
        size = tf.cast(tf.io.decode_raw(tf.strings.substr(padded, 16, 8), tf.uint8), tf.int64)
        width = ((size[0] * 256 + size[1]) * 256 + size[2]) * 256 + size[3]
        height = ((size[4] * 256 + size[5]) * 256 + size[6]) * 256 + size[7]
        return width * height

    signature = tf.strings.substr(tf.strings.join([encoded, tf.constant(b"\0" * 8)]), 0, 8)
    is_jpeg = tf.io.is_jpeg(encoded)
    known = tf.debugging.Assert(
        tf.logical_or(is_jpeg, tf.equal(signature, _PNG_SIGNATURE)), ["image_bytes must be a PNG or JPEG image"]
    )
    with tf.control_dependencies([known]):
        return tf.cond(is_jpeg, jpeg, png)


def _jpeg_scan_markers(encoded: tf.Tensor) -> tf.Tensor:
    """How many scans a JPEG can have at most: its 0xFF 0xDA byte pairs (the start-of-scan
    marker). Entropy-coded data never holds one (a 0xFF there is followed by 0x00 or a restart
    marker), so only a marker segment's payload (an Exif thumbnail, say) can add to the count,
    which errs on the safe side. One pass over the bytes, before libjpeg sees them."""
    raw = tf.io.decode_raw(encoded, tf.uint8)
    pairs = tf.logical_and(tf.equal(raw[:-1], 0xFF), tf.equal(raw[1:], 0xDA))
    return tf.reduce_sum(tf.cast(pairs, tf.int64))


def _decode_one(encoded: tf.Tensor) -> tf.Tensor:
    pixels = _declared_pixels(encoded)
    small_enough = tf.debugging.assert_less_equal(
        pixels,
        tf.constant(MAX_IMAGE_PIXELS, tf.int64),
        message=f"image_bytes: the image has more than {MAX_IMAGE_PIXELS} pixels",
    )
    scans = tf.cond(tf.io.is_jpeg(encoded), lambda: _jpeg_scan_markers(encoded), lambda: tf.constant(0, tf.int64))
    few_scans = tf.debugging.assert_less_equal(
        scans,
        tf.constant(MAX_JPEG_SCANS, tf.int64),
        message=f"image_bytes: the JPEG has more than {MAX_JPEG_SCANS} scans",
    )
    little_work = tf.debugging.assert_less_equal(
        scans * pixels,
        tf.constant(MAX_JPEG_SCAN_PIXELS, tf.int64),
        message=f"image_bytes: the JPEG's scans times its pixels pass {MAX_JPEG_SCAN_PIXELS}",
    )
    with tf.control_dependencies([small_enough, few_scans, little_work]):
        image = tf.io.decode_image(encoded, channels=1, expand_animations=False)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 -> [0, 1]
    image = tf.image.resize(image, [28, 28], antialias=True)
    return tf.clip_by_value(tf.reshape(image, [28, 28]), 0.0, 1.0)


class ServingModule(tf.Module):
    """Holds the Keras model so its variables are saved, and the two serving functions."""

    def __init__(self, model):
        super().__init__(name="mnist_serving")
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, 28, 28], tf.float32, name=IMAGES_INPUT)])
    def predict_images(self, images):
        probabilities = self.model(images, training=False)
        classes = tf.argmax(probabilities, axis=1, output_type=tf.int64)
        return {PROBABILITIES_OUTPUT: probabilities, CLASSES_OUTPUT: classes}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=IMAGE_BYTES_INPUT)])
    def predict_image_bytes(self, image_bytes):
        # One image at a time (map_fn would run ten at once): a request of many images must not
        # take every core of the server from the other requests.
        images = tf.map_fn(
            _decode_one,
            image_bytes,
            fn_output_signature=tf.TensorSpec([28, 28], tf.float32),
            parallel_iterations=1,
        )
        return self.predict_images(images)


def export_saved_model(keras_model, export_dir: str) -> None:
    """Write the SavedModel with both signatures into export_dir (which must not exist)."""
    module = ServingModule(keras_model)
    signatures = {
        DEFAULT_SIGNATURE: module.predict_images.get_concrete_function(),
        IMAGE_BYTES_SIGNATURE: module.predict_image_bytes.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
