"""The API server's PodSecurity admission as the fake cluster needs it: which requests it judges
and the `restricted` profile's checks that the manifests touch, with upstream's messages.

Follows kubernetes/pod-security-admission:
- admission/admission.go, ValidatePodController: a workload (Deployment, Job, ...; the kinds of
  defaultPodSpecResources) is judged only when the namespace's `warn` or `audit` level is above
  privileged, and never against `enforce` (only pods are enforced); a violation of `warn` comes
  back as a warning, `would violate PodSecurity "restricted:latest": <reasons (details)>`.
  A custom resource (TFJob) is not judged at all: its pods are, when they are created.
- policy/check_privileged.go, check_allowPrivilegeEscalation.go, check_capabilities_restricted.go,
  check_runAsNonRoot.go, check_seccompProfile_restricted.go, check_restrictedVolumes.go: the
  checks, in the order upstream's registry runs them; policy/checks.go, ForbiddenDetail: the
  message. Checks the manifests cannot trip (hostPath, host ports, sysctls, AppArmor, SELinux,
  procMount, Windows) are left out.
"""

from __future__ import annotations

# admission.go, defaultPodSpecResources (by kind): where the pod template lives in each.
CONTROLLER_TEMPLATES = {
    "ReplicationController": ("spec", "template"),
    "PodTemplate": ("template",),
    "ReplicaSet": ("spec", "template"),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
# check_restrictedVolumes.go: the volume sources `restricted` allows.
ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
NAME_KEY = "name"


def _quote(items) -> str:
    return '"' + '", "'.join(items) + '"'


def _plural(items) -> str:
    return "container" if len(items) == 1 else "containers"


def _containers(spec: dict) -> list[dict]:
    return [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]


def _privileged(spec):
    bad = [c[NAME_KEY] for c in _containers(spec) if (c.get("securityContext") or {}).get("privileged")]
    if bad:
        return "privileged", f"{_plural(bad)} {_quote(bad)} must not set securityContext.privileged=true"
    return None


def _allow_privilege_escalation(spec):
    bad = [
        c[NAME_KEY]
        for c in _containers(spec)
        if (c.get("securityContext") or {}).get("allowPrivilegeEscalation") is not False
    ]
    if bad:
        return (
            "allowPrivilegeEscalation != false",
            f"{_plural(bad)} {_quote(bad)} must set securityContext.allowPrivilegeEscalation=false",
        )
    return None


def _capabilities(spec):
    missing_drop, adding, added = [], [], set()
    for container in _containers(spec):
        capabilities = (container.get("securityContext") or {}).get("capabilities")
        if capabilities is None:
            missing_drop.append(container[NAME_KEY])
            continue
        if "ALL" not in (capabilities.get("drop") or []):
            missing_drop.append(container[NAME_KEY])
        forbidden = [cap for cap in capabilities.get("add") or [] if cap != "NET_BIND_SERVICE"]
        if forbidden:
            adding.append(container[NAME_KEY])
            added.update(forbidden)
    details = []
    if missing_drop:
        details.append(
            f'{_plural(missing_drop)} {_quote(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_plural(adding)} {_quote(adding)} must not include {_quote(sorted(added))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _pod_or_containers(spec, field, good, reason, must_not, must):
    """runAsNonRoot and seccompProfile share one shape: the pod sets it, or each container does."""
    bad_setters, bad_values = [], set()
    pod_value = (spec.get("securityContext") or {}).get(field)
    pod_set = False
    if pod_value is not None:
        if good(pod_value):
            pod_set = True
        else:
            bad_setters.append("pod")
            bad_values.add(str(pod_value))
    explicit, implicit = [], []
    for container in _containers(spec):
        value = (container.get("securityContext") or {}).get(field)
        if value is not None:
            if not good(value):
                explicit.append(container[NAME_KEY])
                bad_values.add(str(value))
        elif not pod_set:
            implicit.append(container[NAME_KEY])
    if explicit:
        bad_setters.append(f"{_plural(explicit)} {_quote(explicit)}")
    if bad_setters:
        return reason, must_not(" and ".join(bad_setters), bad_values)
    if implicit:
        return reason, must(f"pod or {_plural(implicit)} {_quote(implicit)}")
    return None


def _run_as_non_root(spec):
    return _pod_or_containers(
        spec,
        "runAsNonRoot",
        lambda value: value is True,
        "runAsNonRoot != true",
        lambda setters, _: f"{setters} must not set securityContext.runAsNonRoot=false",
        lambda who: f"{who} must set securityContext.runAsNonRoot=true",
    )


def _seccomp_profile(spec):
    return _pod_or_containers(
        spec,
        "seccompProfile",
        lambda value: value.get("type") in ("RuntimeDefault", "Localhost"),
        "seccompProfile",
        lambda setters, values: (
            f"{setters} must not set securityContext.seccompProfile.type to {_quote(sorted(values))}"
        ),
        lambda who: f'{who} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"',
    )


def _restricted_volumes(spec):
    bad, kinds = [], set()
    for volume in spec.get("volumes", []):
        sources = [key for key in volume if key != NAME_KEY]
        if not any(source in ALLOWED_VOLUMES for source in sources):
            bad.append(volume[NAME_KEY])
            kinds.update(sources)
    if bad:
        return (
            "restricted volume types",
            f"{'volume' if len(bad) == 1 else 'volumes'} {_quote(bad)} "
            f"{'uses' if len(bad) == 1 else 'use'} restricted volume {'type' if len(kinds) == 1 else 'types'} {_quote(sorted(kinds))}",
        )
    return None


RESTRICTED_CHECKS = (
    _privileged,
    _allow_privilege_escalation,
    _capabilities,
    _restricted_volumes,
    _run_as_non_root,
    _seccomp_profile,
)


def violations(pod_spec: dict) -> list[tuple[str, str]]:
    return [found for check in RESTRICTED_CHECKS if (found := check(pod_spec))]


def pod_template(obj: dict) -> dict | None:
    path = CONTROLLER_TEMPLATES.get(obj["kind"])
    if path is None:
        return None
    node = obj
    for key in path:
        node = (node or {}).get(key)
    return node


def controller_warnings(namespace_labels: dict, obj: dict) -> list[str]:
    """The warnings the API server returns for writing workload `obj` into a namespace with
    these labels (ValidatePodController, EvaluatePod with enforce=false)."""
    warn = namespace_labels.get("pod-security.kubernetes.io/warn", "privileged")
    audit = namespace_labels.get("pod-security.kubernetes.io/audit", "privileged")
    if warn == "privileged" and audit == "privileged":
        return []
    template = pod_template(obj)
    if template is None or warn != "restricted":
        return []  # only the restricted profile is modelled; audit goes to the audit log only
    found = violations(template.get("spec") or {})
    if not found:
        return []
    version = namespace_labels.get("pod-security.kubernetes.io/warn-version", "latest")
    detail = ", ".join(f"{reason} ({text})" if text else reason for reason, text in found)
    return [f'would violate PodSecurity "restricted:{version}": {detail}']
