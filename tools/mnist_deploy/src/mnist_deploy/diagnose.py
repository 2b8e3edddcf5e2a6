"""When a stage fails: find the pod that explains it and tell its story (state + last log lines)."""

from __future__ import annotations

from mnist_deploy.cluster import Cluster

# Waiting reasons that mean the container will not start without someone changing something.
STUCK_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


def pod_selector(obj: dict) -> str | None:
    """The label selector of the pods a workload runs."""
    name = obj["metadata"]["name"]
    if obj["kind"] == "Job":
        return f"batch.kubernetes.io/job-name={name}"
    if obj["kind"] == "TFJob":
        return f"training.kubeflow.org/job-name={name}"
    labels = obj.get("spec", {}).get("selector", {}).get("matchLabels")
    if labels:
        return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
    return None


def _statuses(pod: dict) -> list[dict]:
    status = pod.get("status", {})
    return (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])


def pod_problem(pod: dict) -> tuple[str, str] | None:
    """(container, what is wrong) for a pod in trouble, None for a healthy or busy one."""
    for container in _statuses(pod):
        state = container.get("state", {})
        terminated = state.get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            reason = terminated.get("reason") or "Error"
            return container["name"], f"exited with code {terminated['exitCode']} ({reason})"
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") in STUCK_REASONS:
            detail = f": {waiting['message']}" if waiting.get("message") else ""
            return container["name"], f"{waiting['reason']}{detail}"
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return "", f"not scheduled: {condition.get('message') or condition.get('reason')}"
    return None


def pick_pod(pods: list[dict]) -> dict | None:
    """The pod to show: the newest one in trouble, else the newest one."""
    if not pods:
        return None
    newest_first = sorted(pods, key=lambda pod: pod["metadata"].get("creationTimestamp") or "", reverse=True)
    troubled = [pod for pod in newest_first if pod_problem(pod)]
    return (troubled or newest_first)[0]


def failure_report(cluster: Cluster, obj: dict, tail_lines: int = 30) -> str:
    """Which pod, what is wrong with it, and its last log lines."""
    selector = pod_selector(obj)
    namespace = obj["metadata"].get("namespace", "default")
    pod = pick_pod(cluster.list_pods(namespace, selector)) if selector else None
    if pod is None:
        return f"no pods found for {obj['kind']}/{obj['metadata']['name']} (selector {selector})"
    name = pod["metadata"]["name"]
    problem = pod_problem(pod)
    container = problem[0] if problem and problem[0] else pod["spec"]["containers"][0]["name"]
    lines = [
        f"pod {name}, container {container}: {problem[1] if problem else pod.get('status', {}).get('phase', 'unknown phase')}"
    ]
    try:
        log = cluster.pod_log(namespace, name, container, tail_lines)
    except Exception as error:  # no log yet (image never pulled), or the pod is gone
        log = f"(no log available: {str(error).splitlines()[0] if str(error) else type(error).__name__})"
    lines.append(f"last {tail_lines} log lines:")
    lines.extend("  " + line for line in (log.rstrip().splitlines() or ["(empty)"]))
    lines.append(f"more: kubectl -n {namespace} logs {name} -c {container}; kubectl -n {namespace} describe pod {name}")
    return "\n".join(lines)
