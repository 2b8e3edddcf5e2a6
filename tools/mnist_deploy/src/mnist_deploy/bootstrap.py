"""`mnist-gke up|down`: the one-time Google Cloud setup the gke overlay needs (make gke-up/gke-down).

The setup is a plan, a list of steps built from the settings without running anything; each step
has a check (does it exist?), a create and, where gke-down removes it, a delete. The runner
(mnist_deploy.gcloud_runner) checks before it creates, so `up` can be re-run at any time and only
makes what is missing; `down` removes in reverse order, only what exists.

  mnist-gke up   --project my-project [--region us-central1] [--iap-member user:me@example.com] [--dry-run]
  mnist-gke down --project my-project [--delete-storage] [--dry-run]

Exit codes: 0 done, 1 a gcloud/kubectl command failed (its error is shown), 2 a set-up problem
(gcloud missing, no project, billing off, no permission: the message says what to do).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from importlib import metadata

from mnist_deploy.errors import DeployError
from mnist_deploy.setup_step import Step

# The Kubeflow Training Operator (TFJob, kubeflow.org/v1): the one pin, also read by CI's kind job.
TRAINING_OPERATOR_VERSION = "v1.8.1"
TRAINING_OPERATOR_MANIFESTS = (
    f"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref={TRAINING_OPERATOR_VERSION}"
)
NAMESPACE = "mnist"
# Everything the setup and the gke overlay use: GKE, Artifact Registry, Cloud Storage, IAM
# (service accounts, Workload Identity), Compute (the static IP, the load balancer), IAP, Cloud
# Monitoring (Managed Prometheus) and Cloud Build (.ci/cloudbuild.yaml).
APIS = (
    "compute.googleapis.com",
    "container.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",
    "monitoring.googleapis.com",
    "cloudbuild.googleapis.com",
)
# Who may do what with the bucket: writers make data, checkpoints and models; readers only read.
# The Kubernetes service accounts are the ones components/gcs-storage annotates.
GOOGLE_ACCOUNTS = {
    "mnist-writer": {"bucket_role": "roles/storage.objectUser", "pods": ("mnist-trainer", "mnist-exporter")},
    "mnist-reader": {"bucket_role": "roles/storage.objectViewer", "pods": ("tf-serving", "web-ui", "tensorboard")},
}


@dataclasses.dataclass(frozen=True)
class Settings:
    project: str
    region: str = "us-central1"
    cluster: str = "mnist"
    repository: str = "mnist"
    bucket: str = ""  # default: PROJECT-mnist
    static_ip_name: str = "mnist-web-ui"
    # A regional cluster: --num-nodes is per zone, and the region's zones (three in us-central1)
    # each get that many. Sizes and what they cost per day: kustomize/README.md.
    machine_type: str = "e2-standard-8"
    num_nodes: int = 1
    iap_members: tuple[str, ...] = ()
    kubectl: str = "kubectl"

    @property
    def bucket_url(self) -> str:
        return f"gs://{self.bucket or self.project + '-mnist'}"

    @property
    def kube_context(self) -> str:
        """The context name `gcloud container clusters get-credentials` writes."""
        return f"gke_{self.project}_{self.region}_{self.cluster}"

    def account(self, name: str) -> str:
        return f"{name}@{self.project}.iam.gserviceaccount.com"


def _gcloud(*args: str, project: str) -> tuple[str, ...]:
    return ("gcloud", *args, f"--project={project}")


def _iam_check(resource: tuple[str, ...], role: str, member: str, project: str) -> dict:
    """A check that `member` has `role` in a resource's IAM policy: its members of that role, listed."""
    return {
        "check": _gcloud(
            *resource,
            "--flatten=bindings[].members",
            f"--filter=bindings.role={role}",
            "--format=value(bindings.members)",
            project=project,
        ),
        "expect": member,
    }


def _binding(
    name: str, why: str, target: tuple[str, ...], role: str, member: str, project: str, extra: tuple[str, ...] = ()
) -> Step:
    """An IAM binding on `target` (e.g. ("storage", "buckets", "gs://b")), checked, added, removed."""
    flags = (f"--member={member}", f"--role={role}", *extra)
    return Step(
        name=name,
        why=why,
        **_iam_check((*target[:-1], "get-iam-policy", target[-1]), role, member, project),
        create=_gcloud(*target[:-1], "add-iam-policy-binding", target[-1], *flags, project=project),
        delete=_gcloud(*target[:-1], "remove-iam-policy-binding", target[-1], *flags, project=project),
    )


def preflight(settings: Settings) -> list[Step]:
    """What must hold before anything is made: the project is reachable and billing is on."""
    project = settings.project
    return [
        Step(
            name=f"project {project}",
            why="exists, and this account may read it",
            check=_gcloud("projects", "describe", project, "--format=value(projectId)", project=project),
            expect=project,
            create=(),
        ),
        Step(
            name=f"billing of {project}",
            why="GKE, Artifact Registry and Cloud Storage need a billing account",
            check=_gcloud(
                "billing", "projects", "describe", project, "--format=value(billingEnabled)", project=project
            ),
            expect="True",
            create=(),
        ),
    ]


def plan(settings: Settings) -> list[Step]:
    """Every step of gke-up, in the order they depend on each other."""
    project, region = settings.project, settings.region
    steps = [
        Step(
            name=f"API {api}",
            why="enabled before anything that uses it",
            check=_gcloud(
                "services",
                "list",
                "--enabled",
                f"--filter=config.name={api}",
                "--format=value(config.name)",
                project=project,
            ),
            expect=api,
            create=_gcloud("services", "enable", api, project=project),
            kept="other things in the project may use it",
        )
        for api in APIS
    ]
    location = (f"--location={region}",)
    steps += [
        Step(
            name=f"Artifact Registry repository {settings.repository}",
            why="where make push and Cloud Build put the images",
            check=_gcloud("artifacts", "repositories", "describe", settings.repository, *location, project=project),
            create=_gcloud(
                "artifacts",
                "repositories",
                "create",
                settings.repository,
                "--repository-format=docker",
                *location,
                project=project,
            ),
            delete=_gcloud(
                "artifacts", "repositories", "delete", settings.repository, *location, "--quiet", project=project
            ),
        ),
        Step(
            name=f"Docker login to {region}-docker.pkg.dev",
            why="lets make push reach the repository",
            create=("gcloud", "auth", "configure-docker", f"{region}-docker.pkg.dev", "--quiet"),
            kept="local Docker configuration only",
        ),
        Step(
            name=f"GKE cluster {settings.cluster}",
            why="Workload Identity (pods act as Google service accounts), the Cloud Storage FUSE CSI "
            "driver (the bucket as a volume), Dataplane V2 (enforces NetworkPolicies), Managed Prometheus",
            check=_gcloud(
                "container",
                "clusters",
                "describe",
                settings.cluster,
                f"--region={region}",
                "--format=value(name)",
                project=project,
            ),
            create=_gcloud(
                "container",
                "clusters",
                "create",
                settings.cluster,
                f"--region={region}",
                f"--num-nodes={settings.num_nodes}",
                f"--machine-type={settings.machine_type}",
                f"--workload-pool={project}.svc.id.goog",
                "--addons=GcsFuseCsiDriver",
                "--enable-dataplane-v2",
                "--enable-managed-prometheus",
                project=project,
            ),
            delete=_gcloud(
                "container", "clusters", "delete", settings.cluster, f"--region={region}", "--quiet", project=project
            ),
        ),
        Step(
            name=f"kubectl context {settings.kube_context}",
            why="what make deploy and the next step talk to",
            create=_gcloud(
                "container", "clusters", "get-credentials", settings.cluster, f"--region={region}", project=project
            ),
            kept="a kubeconfig entry; the cluster it points at is deleted",
        ),
        Step(
            name=f"Kubeflow Training Operator {TRAINING_OPERATOR_VERSION}",
            why="provides the TFJob kind of components/distributed-training",
            check=(
                settings.kubectl,
                f"--context={settings.kube_context}",
                "--namespace=kubeflow",
                "get",
                "deployment",
                "training-operator",
            ),
            create=(
                settings.kubectl,
                f"--context={settings.kube_context}",
                "apply",
                "--server-side",
                "-k",
                TRAINING_OPERATOR_MANIFESTS,
            ),
            kept="it goes with the cluster",
        ),
        Step(
            name=f"bucket {settings.bucket_url}",
            why="data, checkpoints and models; hierarchical namespace makes the exporter's "
            "publish-by-rename atomic on FUSE",
            check=_gcloud(
                "storage", "buckets", "describe", settings.bucket_url, "--format=value(name)", project=project
            ),
            create=_gcloud(
                "storage",
                "buckets",
                "create",
                settings.bucket_url,
                f"--location={region}",
                "--uniform-bucket-level-access",
                "--enable-hierarchical-namespace",
                project=project,
            ),
            delete=_gcloud("storage", "rm", "--recursive", settings.bucket_url, project=project),
            storage=True,
        ),
    ]
    for name, access in GOOGLE_ACCOUNTS.items():
        email = settings.account(name)
        steps.append(
            Step(
                name=f"Google service account {email}",
                why=f"the identity of {', '.join(access['pods'])}",
                check=_gcloud("iam", "service-accounts", "describe", email, "--format=value(email)", project=project),
                create=_gcloud(
                    "iam", "service-accounts", "create", name, f"--display-name=MNIST {name}", project=project
                ),
                delete=_gcloud("iam", "service-accounts", "delete", email, "--quiet", project=project),
            )
        )
    for name, access in GOOGLE_ACCOUNTS.items():
        email = settings.account(name)
        steps.append(
            _binding(
                f"{access['bucket_role']} on {settings.bucket_url} for {name}",
                "what the account may do with the bucket",
                ("storage", "buckets", settings.bucket_url),
                access["bucket_role"],
                f"serviceAccount:{email}",
                project,
            )
        )
        for pod_account in access["pods"]:
            member = f"serviceAccount:{project}.svc.id.goog[{NAMESPACE}/{pod_account}]"
            steps.append(
                _binding(
                    f"Workload Identity {NAMESPACE}/{pod_account} -> {name}",
                    "lets the pods of that Kubernetes service account act as the Google one",
                    ("iam", "service-accounts", email),
                    "roles/iam.workloadIdentityUser",
                    member,
                    project,
                )
            )
    steps.append(
        Step(
            name=f"global static IP {settings.static_ip_name}",
            why="the ingress's address; point DOMAIN's DNS A record at it",
            check=_gcloud(
                "compute",
                "addresses",
                "describe",
                settings.static_ip_name,
                "--global",
                "--format=value(address)",
                project=project,
            ),
            create=_gcloud("compute", "addresses", "create", settings.static_ip_name, "--global", project=project),
            delete=_gcloud(
                "compute", "addresses", "delete", settings.static_ip_name, "--global", "--quiet", project=project
            ),
        )
    )
    for member in settings.iap_members:
        steps.append(
            _binding(
                f"IAP access for {member}",
                "who may sign in to the web UI behind IAP",
                ("projects", project),
                "roles/iap.httpsResourceAccessor",
                member,
                project,
                extra=("--condition=None",),
            )
        )
    return steps


def teardown(settings: Settings, delete_storage: bool) -> list[Step]:
    """The steps gke-down removes, in reverse order of creation; the bucket only when asked."""
    return [step for step in reversed(plan(settings)) if step.delete and (delete_storage or not step.storage)]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mnist-gke", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {metadata.version('mnist-deploy')}")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--project", default="", help="the Google Cloud project (make: PROJECT_ID)")
    parser.add_argument("--region", default=Settings.region)
    parser.add_argument("--cluster", default=Settings.cluster)
    parser.add_argument("--repository", default=Settings.repository, help="Artifact Registry repository")
    parser.add_argument("--bucket", default="", help="bucket name (default: PROJECT-mnist)")
    parser.add_argument("--static-ip-name", default=Settings.static_ip_name)
    parser.add_argument(
        "--iap-member",
        action="append",
        default=[],
        metavar="MEMBER",
        help="who may sign in through IAP, e.g. user:me@example.com (repeatable)",
    )
    parser.add_argument("--machine-type", default=Settings.machine_type, help="the nodes' machine type")
    parser.add_argument(
        "--nodes-per-zone",
        type=int,
        default=Settings.num_nodes,
        help="nodes in each zone of the region (regional cluster)",
    )
    parser.add_argument("--kubectl", default="kubectl", help="kubectl binary (installs the training operator)")
    parser.add_argument("--delete-storage", action="store_true", help="down: delete the bucket and its data too")
    parser.add_argument("--dry-run", action="store_true", help="print every command, run none (needs no gcloud)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from mnist_deploy import gcloud_runner  # runs the steps; imports this module's Step from setup_step

    args = build_parser().parse_args(argv)
    try:
        if not args.project:
            raise DeployError("no Google Cloud project: set PROJECT_ID=my-project (make) or --project")
        if args.nodes_per_zone < 1:
            raise DeployError(
                f"--nodes-per-zone {args.nodes_per_zone}: a cluster needs at least one node per zone (make: GKE_NODES_PER_ZONE)"
            )
        settings = Settings(
            project=args.project,
            region=args.region,
            cluster=args.cluster,
            repository=args.repository,
            bucket=args.bucket,
            static_ip_name=args.static_ip_name,
            iap_members=tuple(args.iap_member),
            kubectl=args.kubectl,
            machine_type=args.machine_type,
            num_nodes=args.nodes_per_zone,
        )
        runner = gcloud_runner.Runner(dry_run=args.dry_run)
        if args.action == "up":
            runner.up(preflight(settings), plan(settings))
        else:
            runner.down(
                preflight(settings)[:1],
                teardown(settings, args.delete_storage),
                kept=[step for step in plan(settings) if not step.delete or (step.storage and not args.delete_storage)],
            )
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
