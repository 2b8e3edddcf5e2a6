"""Policy checks on a render: what the schemas cannot see. Each check returns a list of
violations (strings naming the object); `render` refuses manifests with any, and tests/deploy
runs them on every overlay and component combination.

  security     non-root, seccomp, no privilege escalation, read-only root, all capabilities dropped
  resources    requests and limits for CPU and memory, requests not above limits
  probes       readiness and liveness on every long-running container
  images       pinned: a tag other than latest, or a digest
  references   every ConfigMap, Secret, ServiceAccount, PVC, Service, ... named exists in the render
  selectors    Services, PDBs, PodMonitorings, NetworkPolicies select pods of the render
  ports        Service target ports, probe ports, --*port flags and host:port settings agree
  storage      only the data, trainer and exporter pods mount the shared storage writable
"""

from __future__ import annotations

import re

from mnist_deploy.order import COMPONENT_LABEL, describe

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
STORAGE_VOLUME = "storage"
STORAGE_WRITERS = {"data", "trainer", "exporter"}
QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
SCALE = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


# ---------------------------------------------------------------------------- pods ------------


def pod_templates(obj: dict) -> list[tuple[str, dict]]:
    """(where, pod template) for every pod an object runs: `Kind/name` or `TFJob/name[Worker]`."""
    spec = obj.get("spec", {})
    if obj["kind"] in POD_TEMPLATE_KINDS:
        return [(describe(obj), spec.get("template", {}))]
    if obj["kind"] == "CronJob":
        return [(describe(obj), spec.get("jobTemplate", {}).get("spec", {}).get("template", {}))]
    if obj["kind"] == "TFJob":
        return [
            (f"{describe(obj)}[{role}]", replica.get("template", {}))
            for role, replica in sorted(spec.get("tfReplicaSpecs", {}).items())
        ]
    return []


def containers(template: dict) -> list[dict]:
    pod = template.get("spec", {})
    return (pod.get("initContainers") or []) + (pod.get("containers") or [])


def all_pods(objects: list[dict]) -> list[tuple[dict, str, dict]]:
    return [(obj, where, template) for obj in objects for where, template in pod_templates(obj)]


def selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a label set."""
    if not selector:
        return True
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pods_selected(objects: list[dict], namespace: str | None, selector: dict | None) -> list[tuple[str, dict]]:
    return [
        (where, template)
        for obj, where, template in all_pods(objects)
        if obj["metadata"].get("namespace") == namespace
        and selects(selector, template.get("metadata", {}).get("labels") or {})
    ]


# ---------------------------------------------------------------------------- checks ----------


def check_security(objects: list[dict]) -> list[str]:
    problems = []
    for _, where, template in all_pods(objects):
        pod_context = template.get("spec", {}).get("securityContext") or {}
        for container in containers(template):
            context = container.get("securityContext") or {}
            name = f"{where} container {container['name']}"
            effective = {**pod_context, **context}
            if effective.get("runAsNonRoot") is not True:
                problems.append(f"{name}: runAsNonRoot is not true")
            if effective.get("runAsUser") == 0:
                problems.append(f"{name}: runs as user 0")
            if (effective.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: no seccompProfile RuntimeDefault")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: readOnlyRootFilesystem is not true")
            capabilities = context.get("capabilities") or {}
            if "ALL" not in (capabilities.get("drop") or []):
                problems.append(f"{name}: capabilities do not drop ALL")
            if capabilities.get("add"):
                problems.append(f"{name}: adds capabilities {capabilities['add']}")
            if context.get("privileged"):
                problems.append(f"{name}: privileged")
    return problems


def quantity(value) -> float:
    match = QUANTITY.match(str(value))
    if not match or match.group(2) not in SCALE:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * SCALE[match.group(2)]


def check_resources(objects: list[dict]) -> list[str]:
    problems = []
    for _, where, template in all_pods(objects):
        for container in containers(template):
            name = f"{where} container {container['name']}"
            resources = container.get("resources") or {}
            for resource in ("cpu", "memory"):
                request = (resources.get("requests") or {}).get(resource)
                limit = (resources.get("limits") or {}).get(resource)
                if request is None or limit is None:
                    problems.append(f"{name}: no {resource} {'request' if request is None else 'limit'}")
                elif quantity(request) > quantity(limit):
                    problems.append(f"{name}: {resource} request {request} is above its limit {limit}")
    return problems


def check_probes(objects: list[dict]) -> list[str]:
    problems = []
    for obj, where, template in all_pods(objects):
        if obj["kind"] not in LONG_RUNNING_KINDS:
            continue
        for container in template.get("spec", {}).get("containers") or []:
            for probe in ("readinessProbe", "livenessProbe"):
                if not container.get(probe):
                    problems.append(f"{where} container {container['name']}: no {probe}")
    return problems


def image_is_pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, sep, tag = image.rpartition(":")
    return bool(sep) and "/" not in tag and tag != "latest" and "${" not in image


def check_images(objects: list[dict]) -> list[str]:
    return [
        f"{where} container {container['name']}: image {container.get('image')!r} is not pinned"
        for _, where, template in all_pods(objects)
        for container in containers(template)
        if not image_is_pinned(container.get("image") or "")
    ]


def _names(objects: list[dict], kind: str) -> set[tuple[str | None, str]]:
    return {(obj["metadata"].get("namespace"), obj["metadata"]["name"]) for obj in objects if obj["kind"] == kind}


def _pod_references(template: dict) -> list[tuple[str, str]]:
    """(kind, name) of everything a pod template names."""
    pod = template.get("spec", {})
    found = [("ServiceAccount", pod.get("serviceAccountName") or "default")]
    for volume in pod.get("volumes") or []:
        if "configMap" in volume and not volume["configMap"].get("optional"):
            found.append(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume and not volume["secret"].get("optional"):
            found.append(("Secret", volume["secret"]["secretName"]))
        if "persistentVolumeClaim" in volume:
            found.append(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            for kind, key in (("ConfigMap", "configMap"), ("Secret", "secret")):
                if key in source and not source[key].get("optional"):
                    found.append((kind, source[key]["name"]))
    for container in containers(template):
        for source in container.get("envFrom") or []:
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source and not source[key].get("optional"):
                    found.append((kind, source[key]["name"]))
        for variable in container.get("env") or []:
            value_from = variable.get("valueFrom") or {}
            for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                if key in value_from and not value_from[key].get("optional"):
                    found.append((kind, value_from[key]["name"]))
    for secret in pod.get("imagePullSecrets") or []:
        found.append(("Secret", secret["name"]))
    return found


def _annotation_references(obj: dict) -> list[tuple[str, str]]:
    """GKE Ingress settings named in annotations."""
    annotations = obj["metadata"].get("annotations") or {}
    found = []
    backend = annotations.get("cloud.google.com/backend-config")
    if backend:
        found += [("BackendConfig", name) for name in re.findall(r'"([a-z0-9-]+)"\s*[,}]', backend)]
    for name in filter(None, (annotations.get("networking.gke.io/managed-certificates") or "").split(",")):
        found.append(("ManagedCertificate", name.strip()))
    frontend = annotations.get("networking.gke.io/v1beta1.FrontendConfig")
    if frontend:
        found.append(("FrontendConfig", frontend))
    return found


def check_references(objects: list[dict]) -> list[str]:
    problems = []
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        wanted = [(describe(obj), kind, name) for kind, name in _annotation_references(obj)]
        wanted += [
            (where, kind, name) for where, template in pod_templates(obj) for kind, name in _pod_references(template)
        ]
        if obj["kind"] == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]
            wanted.append((describe(obj), target["kind"], target["name"]))
        if obj["kind"] == "Ingress":
            backends = [obj["spec"].get("defaultBackend")] + [
                path.get("backend")
                for rule in obj["spec"].get("rules") or []
                for path in (rule.get("http") or {}).get("paths") or []
            ]
            wanted += [
                (describe(obj), "Service", backend["service"]["name"])
                for backend in backends
                if backend and "service" in backend
            ]
        for where, kind, name in wanted:
            if (namespace, name) not in _names(objects, kind):
                problems.append(f"{where}: refers to {kind} {name!r}, which is not in the render")
    return problems


def check_selectors(objects: list[dict]) -> list[str]:
    problems = []
    for obj in objects:
        namespace, spec = obj["metadata"].get("namespace"), obj.get("spec") or {}
        if obj["kind"] == "Service" and spec.get("selector"):
            selector = {"matchLabels": spec["selector"]}
        elif obj["kind"] in ("PodDisruptionBudget", "PodMonitoring"):
            selector = spec.get("selector")
        elif obj["kind"] == "NetworkPolicy" and spec.get("podSelector"):
            selector = spec["podSelector"]
        else:
            continue
        if not pods_selected(objects, namespace, selector):
            problems.append(f"{describe(obj)}: its selector {selector} matches no pod of the render")
    return problems


def _container_ports(template: dict) -> dict:
    """{name or number: number} of a pod's declared container ports."""
    ports = {}
    for container in template.get("spec", {}).get("containers") or []:
        for port in container.get("ports") or []:
            ports[port["containerPort"]] = port["containerPort"]
            if port.get("name"):
                ports[port["name"]] = port["containerPort"]
    return ports


def _probe_ports(container: dict) -> list:
    found = []
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = ((container.get(probe) or {}).get(handler) or {}).get("port")
            if port is not None:
                found.append((probe, port))
    return found


def _service_ports(objects: list[dict]) -> dict[tuple[str | None, str], set[int]]:
    return {
        (obj["metadata"].get("namespace"), obj["metadata"]["name"]): {p["port"] for p in obj["spec"].get("ports") or []}
        for obj in objects
        if obj["kind"] == "Service"
    }


def check_ports(objects: list[dict]) -> list[str]:
    problems = []
    services = _service_ports(objects)
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] == "Service" and obj["spec"].get("selector"):
            for where, template in pods_selected(objects, namespace, {"matchLabels": obj["spec"]["selector"]}):
                for port in obj["spec"].get("ports") or []:
                    target = port.get("targetPort", port["port"])
                    if target not in _container_ports(template):
                        problems.append(
                            f"{describe(obj)} port {port.get('name', port['port'])}: target "
                            f"{target!r} is not a container port of {where}"
                        )
        if obj["kind"] == "PodMonitoring":
            for where, template in pods_selected(objects, namespace, obj["spec"].get("selector")):
                for endpoint in obj["spec"].get("endpoints") or []:
                    if endpoint["port"] not in _container_ports(template):
                        problems.append(
                            f"{describe(obj)}: port {endpoint['port']!r} is not a container port of {where}"
                        )
        for where, template in pod_templates(obj):
            declared = _container_ports(template)
            for container in template.get("spec", {}).get("containers") or []:
                name = f"{where} container {container['name']}"
                for probe, port in _probe_ports(container):
                    if port not in declared:
                        problems.append(f"{name}: {probe} port {port!r} is not a declared container port")
                for arg in container.get("args") or []:
                    flag = re.match(r"^--([a-z_]*port)=([0-9]+)$", arg)
                    if flag and int(flag.group(2)) not in declared:
                        problems.append(f"{name}: {arg} is not a declared container port")
                for variable in container.get("env") or []:
                    problems += _env_port_problems(name, variable, declared, services, namespace)
    return problems


def _env_port_problems(name, variable, declared, services, namespace) -> list[str]:
    value = str(variable.get("value", ""))
    if variable["name"].endswith("_PORT") and value.isdigit() and int(value) not in declared:
        return [f"{name}: {variable['name']}={value} is not a declared container port"]
    # http://host:port/..., host:port, and gRPC's dns:///host:port
    address = re.match(r"^(?:[a-z]+:///?)?([a-z0-9-]+):([0-9]+)(?:/.*)?$", value)
    if address and (namespace, address.group(1)) in services:
        if int(address.group(2)) not in services[(namespace, address.group(1))]:
            return [f"{name}: {variable['name']}={value}: Service {address.group(1)} has no port {address.group(2)}"]
    return []


def check_storage_writers(objects: list[dict]) -> list[str]:
    problems = []
    for _, where, template in all_pods(objects):
        component = (template.get("metadata", {}).get("labels") or {}).get(COMPONENT_LABEL)
        if component in STORAGE_WRITERS:
            continue
        for container in containers(template):
            for mount in container.get("volumeMounts") or []:
                if mount["name"] == STORAGE_VOLUME and not mount.get("readOnly"):
                    problems.append(
                        f"{where} container {container['name']}: mounts storage writable, "
                        f"but only {sorted(STORAGE_WRITERS)} may write"
                    )
    return problems


CHECKS = (
    check_security,
    check_resources,
    check_probes,
    check_images,
    check_references,
    check_selectors,
    check_ports,
    check_storage_writers,
)


def violations(objects: list[dict]) -> list[str]:
    return [problem for check in CHECKS for problem in check(objects)]
