"""What serves, as data every part reads: a stable version, an optional canary at a share of traffic.

    state.py         the rollout state file (rollout.json): read, schema-checked, written atomically
    model_config.py  the state rendered as TF Serving's --model_config_file (specific versions + labels)
    transitions.py   `publish`: the first version stable, a later one the canary (both tools use it)
    configmap.py     the state on a cluster: the ConfigMap model-rollout's keys, read and rendered
    guard.py         the promote guard: margins, and the verdict from per-version figures

The decisions and the command that changes a running system are the tool mnist_rollout (tools/).
"""
