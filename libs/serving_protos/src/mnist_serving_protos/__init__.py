"""TF Serving's protos without TensorFlow: `apis` (the messages and stubs), `generate` (makes them)."""
