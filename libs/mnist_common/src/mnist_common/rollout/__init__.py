"""Model versions roll out like code: a stable version, an optional canary at a share of traffic.

    state.py         the rollout state file (rollout.json): read, schema-checked, written atomically
    decisions.py     pure transitions: publish, canary, promote, rollback; the promote guard
    model_config.py  the state rendered as TF Serving's --model_config_file (specific versions + labels)
    steps.py         the order in which a change reaches a running model server without failing requests
    live_metrics.py  per-version figures from the web UI's Prometheus metrics
    cli.py           `python -m mnist_common.rollout`: what the make targets run
"""
