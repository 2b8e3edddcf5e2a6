"""The benchmarks, one per `make bench-*` target; nothing here ships in a production image.

train            make bench-train: trains with the defaults, accuracy on the held-out digits
serving          make bench-serving: the model server against a naive Flask app and in-process
loadgen          the Python load generator bench-serving falls back on without h2load
naive_flask_app  the naive reference server bench-serving measures beside the model server
webui            make bench: the web UI's predict path under locust
cpu_share        CPU time per service while a benchmark runs
cli              `mnist-bench train|serving|webui ...`
"""
