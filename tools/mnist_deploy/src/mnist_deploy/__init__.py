"""Render the Kustomize overlays and deploy them to a cluster, in order, waiting for each stage.

Modules, one job each:
  render     kustomize (inside kubectl) as a subprocess, images and ${SETTINGS} filled in
  policy     the rules every render must keep (security, resources, references, ports)
  order      which objects go first, and the stages (data, training, export, serving)
  readiness  pure decisions: is this Job / TFJob / Deployment done, still going, or failed
  cluster    the only module talking to the Kubernetes API (server-side apply, get, delete, logs)
  apply      applying one stage: server-side apply, and re-running Jobs only when they changed
  waiting    polling a stage until ready (or an object until gone)
  diagnose   the failing pod of a workload: what is wrong, and its last log lines
  deploy     deploy / status / undeploy: the stages applied and waited for in turn
  cli        `mnist-deploy render|deploy|status|undeploy`
"""
