"""make canary / promote / rollback / rollout-status: a model version rolls out like code.

    decisions.py     pure transitions: canary, promote, rollback (publish is mnist_common.rollout's)
    steps.py         the order in which a change reaches a running model server without failing requests
    live.py          carrying the steps out against a running model server and web UI
    live_metrics.py  per-version figures from the web UI's Prometheus metrics
    cluster_state.py the ConfigMap model-rollout through the Kubernetes API (--cluster)
    cluster_commands.py  canary / promote / rollback / status carried out on that ConfigMap
    cli.py           `python -m mnist_rollout`: what the make targets run

The state itself, its rendering as a model config and the promote guard's decision are
mnist_common.rollout (every part reads them).
"""
