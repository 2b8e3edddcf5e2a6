"""The naive reference for the serving benchmark: Flask, one keras model.predict per request.

This is what serving an MNIST model looks like without a model server: no batching, Keras'
predict() overhead on every request, Flask's threaded development server. The benchmark runs it
to show what the stand-in's design buys.

    python naive_flask_app.py --port 9501 [--keras-model artifacts/training/model.keras]
"""

from __future__ import annotations

import argparse

import numpy as np
from flask import Flask, jsonify, request


def create_app(model) -> Flask:
    app = Flask(__name__)

    @app.post("/v1/models/mnist:predict")
    def predict():
        images = np.asarray(request.get_json()["instances"], dtype=np.float32)
        probabilities = model.predict(images, verbose=0)
        return jsonify(predictions=[{"probabilities": p.tolist(), "classes": int(p.argmax())} for p in probabilities])

    @app.get("/v1/models/mnist")
    def status():
        return jsonify(
            model_version_status=[
                {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
            ]
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="naive Flask + keras model.predict reference")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--keras-model",
        help="a saved .keras model; default: an untrained build_model() (the same computation per request)",
    )
    args = parser.parse_args()
    if args.keras_model:
        import keras

        model = keras.models.load_model(args.keras_model)
    else:
        from mnist_trainer.model import build_model

        model = build_model()
    create_app(model).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
