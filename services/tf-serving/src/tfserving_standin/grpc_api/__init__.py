"""TF Serving's gRPC API: a front-end process speaks gRPC and forwards each call to the model server."""
