"""What serves, as data every part reads: a stable version, an optional canary at a share of traffic.

    state.py         the rollout state file (rollout.json): read, schema-checked, written atomically
    model_config.py  the state rendered as TF Serving's --model_config_file (specific versions + labels)
    transitions.py   publish, canary, promote, rollback: pure; the default canary share
    guard.py         the promote guard: margins, and the verdict from per-version figures
    steps.py         the phases a change takes to reach running model servers without a failed request
    runner.py        carrying the phases out over a Store and the Servers (every replica)
    local.py         the Store and Servers of one machine (files, the model server's REST API)
    configmap.py     the Store and Servers of a cluster (ConfigMap model-rollout, the pods via the pod proxy)

The command line is the tool mnist_rollout (tools/); mnist_deploy publishes with the same parts.
"""
