"""Orchestration of the local system: `make run`, `make retrain`, `make loadtest`, `make bench`.

fingerprint  decides whether the published model still matches the data and training inputs
ports        checks, before anything starts, that every port is free
procfile     starts the Procfile's services (honcho) as one process group, and stops them all
announce     the Procfile entry that waits for the web UI and prints the URL to open
slo          checks locust's statistics against loadtest/slo.yaml
bench        measures the web UI's predict path under locust
"""
