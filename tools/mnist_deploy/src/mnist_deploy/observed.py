"""What `status` says about objects that are not waited for but whose state matters to whoever
opens the UI: the Ingress's address, the certificate's state, the autoscalers' replicas. Pure:
live objects (dicts from the API) in, one line out."""

from __future__ import annotations


def ingress_state(ingress: dict) -> str:
    entries = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    addresses = [
        entry.get("ip") or entry.get("hostname") for entry in entries if entry.get("ip") or entry.get("hostname")
    ]
    if not addresses:
        return "no address yet (the load balancer takes a few minutes)"
    return "address " + ", ".join(addresses)


def certificate_state(certificate: dict) -> str:
    """A GKE ManagedCertificate: Provisioning until every domain resolves to the load balancer."""
    status = certificate.get("status") or {}
    overall = status.get("certificateStatus")
    if not overall:
        return "no status yet (GKE has not picked it up)"
    domains = ", ".join(f"{entry.get('domain')} {entry.get('status')}" for entry in status.get("domainStatus") or [])
    return f"{overall}" + (f" ({domains})" if domains else "")


def autoscaler_state(hpa: dict) -> str:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    line = (
        f"{status.get('currentReplicas', 0)} current, {status.get('desiredReplicas', 0)} desired replicas "
        f"(min {spec.get('minReplicas', 1)}, max {spec.get('maxReplicas', '?')})"
    )
    for condition in status.get("conditions") or []:
        # AbleToScale/ScalingActive False: it cannot act (no metrics); ScalingLimited True: at a bound.
        stuck = condition.get("type") in ("AbleToScale", "ScalingActive") and condition.get("status") == "False"
        if stuck or (condition.get("type") == "ScalingLimited" and condition.get("status") == "True"):
            line += f"; {condition['type']}={condition['status']}: {condition.get('reason', '')}"
    return line


STATES = {
    "Ingress": ingress_state,
    "ManagedCertificate": certificate_state,
    "HorizontalPodAutoscaler": autoscaler_state,
}


def observed_state(live: dict) -> str:
    describe = STATES.get(live["kind"])
    return describe(live) if describe else "present"
