"""make canary / promote / rollback / rollout-status: a model version rolls out like code.

    cli.py           `python -m mnist_rollout`: one table of commands over the local or the cluster store
    cluster_state.py the Kubernetes API as the rollout needs it: the ConfigMap model-rollout, the
                     pods, GETs through the API server's pod proxy (--cluster)
    live_metrics.py  per-version figures from the web UI's Prometheus metrics, summed over pods

The state, its rendering as a model config, the transitions, the promote guard, the phases and
the two stores are mnist_common.rollout (every part reads them; mnist_deploy publishes with them).
"""
