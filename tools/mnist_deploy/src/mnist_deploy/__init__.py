"""Render the Kustomize overlays and deploy them to a cluster, in order, waiting for each stage.

Modules, one job each:
  render     kustomize (inside kubectl) as a subprocess, images and ${SETTINGS} filled in
  policy     the rules every render must keep (security, resources, references, ports)
  order      which objects go first, and the stages (data, training, export, serving)
  readiness  pure decisions: is this Job / TFJob / Deployment done, still going, or failed
  cluster    the only module talking to the Kubernetes API (apply and dry run, get, create,
             replace, delete, member and event lists, pods, logs)
  apply      applying one stage: server-side apply, and re-running Jobs only when they changed
  preflight  the whole render through a server-side dry run before the first stage
  applyset   the inventory (Kubernetes ApplySet labels and parent) and what to prune
  lock       one deploy per namespace: a coordination Lease, taken, renewed, released
  stuck      what a waiting workload's pods are stuck on, and when it is hopeless
  observed   status lines for the Ingress, the certificate and the autoscalers
  waiting    polling a stage until ready (or an object, or its pods, until gone)
  diagnose   the failing pod of a workload: what is wrong, and its last log lines
  deploy     deploy / status / undeploy: locked, dry-run, the stages in turn, then pruned
  cli        `mnist-deploy render|deploy|status|undeploy`
"""
