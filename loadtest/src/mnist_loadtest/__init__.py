"""What the locust load tests (loadtest/locustfile.py) and `make loadtest` use.

pacing     Poisson arrivals for a user class, so users together offer a set request rate
slo        judges locust's statistics against loadtest/slo.yaml
addresses  the gRPC address a locust --host names
cli        `mnist-loadtest check-slo`
"""
