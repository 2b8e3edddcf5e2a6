"""A rendered pod's container as `docker run` arguments: what the kubelet would give it, taken
from the render (command, args, env and envFrom, securityContext, resources, volumes), so a
container runs here as the cluster runs it.

What Kubernetes does and how it is done here:
- command/args: `command` replaces the image's ENTRYPOINT, `args` its CMD (docker's --entrypoint
  takes one word, the rest of `command` goes before `args`).
- securityContext (pod, overridden per container): runAsUser/runAsGroup -> --user, fsGroup ->
  --group-add and the group of the volumes, readOnlyRootFilesystem -> --read-only,
  capabilities -> --cap-drop/--cap-add, allowPrivilegeEscalation: false -> no-new-privileges;
  seccompProfile RuntimeDefault is the engine's default profile.
- resources.limits -> --cpus/--memory.
- volumes: a PersistentVolumeClaim is a host folder (subPath a folder inside it), a ConfigMap a
  folder of one file a key, an emptyDir a tmpfs of its sizeLimit; the container's termination
  message file (/dev/termination-log) a host file, as the kubelet mounts one.
"""

from __future__ import annotations

import os
import pathlib
import re
from dataclasses import dataclass, field

_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?$")
_FACTORS = {
    None: 1,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
}


def quantity(text: str | int) -> float:
    """A Kubernetes quantity ("1Gi", "250m", "2") as a number (bytes or cores)."""
    match = _QUANTITY.match(str(text))
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    number, suffix = float(match.group(1)), match.group(2)
    return number / 1000 if suffix == "m" else number * _FACTORS[suffix]


def pod_spec(obj: dict) -> dict:
    """The pod template of a Job, Deployment or TFJob (its one replica type)."""
    if obj["kind"] == "TFJob":
        (replica,) = obj["spec"]["tfReplicaSpecs"].values()
        return replica["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def find(objects: list[dict], kind: str, name: str) -> dict:
    matches = [obj for obj in objects if obj["kind"] == kind and obj["metadata"]["name"] == name]
    assert len(matches) == 1, f"the render has {len(matches)} {kind}/{name}"
    return matches[0]


@dataclass
class Cluster:
    """What the pods share: the claims' host folders, the ConfigMaps, a docker network."""

    root: pathlib.Path
    objects: list[dict]
    network: str
    config_maps: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        self.config_maps = {obj["metadata"]["name"]: obj for obj in self.objects if obj["kind"] == "ConfigMap"}

    def claim(self, name: str, fs_group: int | None) -> pathlib.Path:
        """The claim's folder, group-owned by the pod's fsGroup and group-writable (setgid), as
        the kubelet prepares a volume for a pod with an fsGroup."""
        path = self.root / "claims" / name
        path.mkdir(parents=True, exist_ok=True)
        self._share(path, fs_group)
        return path

    def _share(self, path: pathlib.Path, fs_group: int | None) -> None:
        """What the kubelet does to a volume at each mount for a pod with an fsGroup (the default
        fsGroupChangePolicy, Always): every file and folder in it to that group, group-writable,
        folders setgid. Without an fsGroup, or not as root, everything is made writable to all."""
        for folder, _, files in os.walk(path):
            for entry in [pathlib.Path(folder), *(pathlib.Path(folder, name) for name in files)]:
                mode = entry.stat().st_mode & 0o7777
                if fs_group is not None and os.geteuid() == 0:
                    os.chown(entry, -1, fs_group)
                    entry.chmod(mode | (0o2070 if entry.is_dir() else 0o060))
                else:
                    entry.chmod(mode | (0o777 if entry.is_dir() else 0o666))

    def config_map_folder(self, name: str) -> pathlib.Path:
        data = self.config_maps[name].get("data", {})
        path = self.root / "configmaps" / name
        path.mkdir(parents=True, exist_ok=True)
        for key, value in data.items():
            (path / key).write_text(value)
            (path / key).chmod(0o644)
        return path

    def names_of(self, labels: dict[str, str]) -> list[str]:
        """The Services whose selector picks pods with these labels: the names other pods reach
        them by (a network alias each)."""
        return sorted(
            obj["metadata"]["name"]
            for obj in self.objects
            if obj["kind"] == "Service"
            and obj["spec"].get("selector")
            and all(labels.get(key) == value for key, value in obj["spec"]["selector"].items())
        )

    def run_args(
        self, obj: dict, container_name: str, docker_name: str, extra_env: dict[str, str] | None = None
    ) -> list[str]:
        """`docker run` arguments (without `docker run` and -d/--rm) for one container of obj."""
        pod = pod_spec(obj)
        (container,) = [c for c in pod["containers"] if c["name"] == container_name]
        pod_security = pod.get("securityContext", {})
        security = {**pod_security, **container.get("securityContext", {})}
        fs_group = pod_security.get("fsGroup")
        args = ["--name", docker_name, "--network", self.network, "--hostname", docker_name]
        labels = obj["spec"].get("template", {}).get("metadata", {}).get("labels", {})
        for alias in self.names_of(labels):
            args += ["--network-alias", alias]

        if "runAsUser" in security:
            user = str(security["runAsUser"])
            if "runAsGroup" in security:
                user += f":{security['runAsGroup']}"
            args += ["--user", user]
        if security.get("runAsNonRoot"):
            assert security.get("runAsUser", 0) != 0, f"{container_name}: runAsNonRoot without a non-root runAsUser"
        if fs_group is not None:
            args += ["--group-add", str(fs_group)]
        for group in pod_security.get("supplementalGroups", []):
            args += ["--group-add", str(group)]
        if security.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        for capability in security.get("capabilities", {}).get("drop", []):
            args += ["--cap-drop", capability]
        for capability in security.get("capabilities", {}).get("add", []):
            args += ["--cap-add", capability]
        if security.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        if security.get("privileged"):
            raise AssertionError(f"{container_name}: privileged containers are not run here")
        seccomp = security.get("seccompProfile", {}).get("type", "RuntimeDefault")
        assert seccomp == "RuntimeDefault", f"{container_name}: seccompProfile {seccomp} is not run here"

        limits = container.get("resources", {}).get("limits", {})
        if "cpu" in limits:
            args += ["--cpus", f"{quantity(limits['cpu']):g}"]
        if "memory" in limits:
            args += ["--memory", str(int(quantity(limits["memory"])))]

        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert "configMapRef" in source, f"{container_name}: envFrom {source} is not run here"
            env.update(self.config_maps[source["configMapRef"]["name"]].get("data", {}))
        for entry in container.get("env", []):
            assert "value" in entry, (
                f"{container_name}: env {entry['name']} from {entry.get('valueFrom')} is not run here"
            )
            env[entry["name"]] = entry["value"]
        env.update(extra_env or {})
        for name, value in env.items():
            args += ["--env", f"{name}={value}"]

        args += self._mounts(pod, container, fs_group, docker_name)
        if "workingDir" in container:
            args += ["--workdir", container["workingDir"]]
        command = container.get("command", [])
        if command:
            args += ["--entrypoint", command[0]]
        args.append(container["image"])
        return args + command[1:] + container.get("args", [])

    def _mounts(self, pod: dict, container: dict, fs_group: int | None, docker_name: str) -> list[str]:
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        args = []
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            target = mount["mountPath"]
            if "emptyDir" in volume:
                size = volume["emptyDir"].get("sizeLimit")
                options = f"type=tmpfs,destination={target},tmpfs-mode=1777"
                args += ["--mount", options + (f",tmpfs-size={int(quantity(size))}" if size else "")]
                continue
            if "persistentVolumeClaim" in volume:
                source = self.claim(volume["persistentVolumeClaim"]["claimName"], fs_group)
                read_only = mount.get("readOnly") or volume["persistentVolumeClaim"].get("readOnly")
                if mount.get("subPath"):
                    source = source / mount["subPath"]
                    source.mkdir(parents=True, exist_ok=True)
                    self._share(source, fs_group)
            elif "configMap" in volume:
                source = self.config_map_folder(volume["configMap"]["name"])
                read_only = True  # the kubelet always projects ConfigMaps read-only
            else:
                raise AssertionError(f"volume {mount['name']}: {sorted(volume)} is not run here")
            args += ["--mount", f"type=bind,source={source},destination={target}" + (",readonly" if read_only else "")]
        # The kubelet's termination message file: what the container writes there is its result.
        message = self.termination_log(docker_name)
        path = container.get("terminationMessagePath", "/dev/termination-log")
        return [*args, "--mount", f"type=bind,source={message},destination={path}"]

    def termination_log(self, docker_name: str) -> pathlib.Path:
        path = self.root / "termination" / docker_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        path.chmod(0o666)
        return path
