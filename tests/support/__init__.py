"""What every test area shares, imported as `tests.support.<module>`.

paths    the repository's folders the tests read (kustomize, the stand-in's config, .venv's bin)
ports    free_port: a loopback port nothing listens on right now
waiting  wait_for: poll a condition until it holds, a process dies, or a deadline passes
models   a small real Keras model fitted on the prepared digits, exported as a version
standin  the stand-in's command line, as make serve builds it
"""
