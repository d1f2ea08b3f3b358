"""A wait between an EKS Pod Identity association and the first pod that needs it.

AWS documents that "EKS Pod Identity associations are eventually consistent, and may take several
seconds to be effective after the initial API call returns successfully"
(API_CreatePodIdentityAssociation). A pod admitted in that window gets no credentials and keeps
none after a restart; it has to be recreated (aws/eks-pod-identity-agent#52,
aws/amazon-eks-pod-identity-webhook#264). The AWS provider does not wait for the association to
take effect (hashicorp/terraform-provider-aws#40852). No time/sleep provider is pinned here, so
the wait is a Kubernetes Job that sleeps on the system nodes: pulumi-kubernetes creates a Job and
waits until it completes (provider/pkg/await/job.go), and every release that uses the
association depends on the Job.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.nodegroups import SYSTEM_LABEL, SYSTEM_TAINT

# Several seconds (AWS) with margin: Terraform modules use 30 s for the same kind of propagation.
SETTLE_SECONDS = 30
# busybox for `sleep`, from ECR Public (reached through the NAT gateways).
IMAGE = "public.ecr.aws/docker/library/busybox:1.37.0"
NAMESPACE = "kube-system"
JOB_TYPE = "kubernetes:batch/v1:Job"


def job_manifest(job_name: str, association_id: pulumi.Input[str]) -> dict[str, Any]:
    """The Job: one short sleep, restricted pod security, on the system nodes, no API token."""
    return {
        "metadata": {
            "name": job_name,
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/name": job_name},
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            "template": {
                # A replaced association replaces the Job, so the wait runs again.
                "metadata": {"annotations": {"eks-platform.io/pod-identity-association": association_id}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "nodeSelector": {SYSTEM_LABEL[0]: SYSTEM_LABEL[1]},
                    "tolerations": [
                        {
                            "key": SYSTEM_TAINT["key"],
                            "operator": "Equal",
                            "value": SYSTEM_TAINT["value"],
                            "effect": "NoSchedule",
                        }
                    ],
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "settle",
                            "image": IMAGE,
                            "command": ["sleep", str(SETTLE_SECONDS)],
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "16Mi"},
                                "limits": {"memory": "16Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def pod_identity_settled(
    name: str,
    job_name: str,
    association: pulumi.Resource,
    association_id: pulumi.Input[str],
    *,
    parent: pulumi.Resource,
    after: list[pulumi.Resource],
) -> pulumi.CustomResource:
    """A Job created after `association` (and `after`, e.g. the system nodes it runs on) that
    completes SETTLE_SECONDS later; make the association's first users depend on it.

    Registered by its type token, as `pulumi_kubernetes.batch.v1.Job` registers it (same token, same
    provider, same inputs): the typed class would import the SDK's whole batch/v1 and core/v1 type
    modules, about 0.45 s of every plan, for one object written as a manifest anyway.
    Checked at the pinned SDKs: pulumi_kubernetes 4.34.2 `batch/v1/Job.py` `_internal_init` sends
    exactly `apiVersion`, `kind`, `metadata`, `spec` under this token, its only other default being
    the package version; pulumi `resource.py` `_get_providers` picks the `kubernetes` provider from
    the parent's providers by the token's package, so the explicit provider is used, as before.
    """
    return pulumi.CustomResource(
        JOB_TYPE,
        name,
        {"apiVersion": "batch/v1", "kind": "Job", **job_manifest(job_name, association_id)},
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[association, *after]),
    )
