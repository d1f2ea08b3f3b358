"""The platform's namespaces, created before the add-ons and secrets that live in them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

# Pod Security Admission levels: the strictest each namespace's workloads allow.
PSA_LEVELS = ("restricted", "baseline", "privileged")


@dataclass(frozen=True, kw_only=True)
class NamespacesArgs:
    # name -> Pod Security Admission level enforced in it
    namespaces: dict[str, str]
    # What must outlive every object in the namespaces on destroy (the volume driver: deleting a
    # namespace deletes its claims, and only a running driver deletes their volumes).
    depends_on: tuple[pulumi.Resource, ...] = ()


class Namespaces(pulumi.ComponentResource):
    """Namespaces with Pod Security Admission enforced, as one raw-manifest group.

    A raw manifest (ConfigGroup) rather than the typed Namespace class: the typed class loads all
    of core/v1 into every plan and test run (about 0.3 s). Every namespace enforces its Pod
    Security level (node-exporter needs `privileged`; controllers run `baseline`) and audits and
    warns at `restricted`.
    """

    def __init__(self, name: str, args: NamespacesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:namespaces:Namespaces", name, None, opts)
        for ns, level in args.namespaces.items():
            if level not in PSA_LEVELS:
                raise ValueError(f"namespace {ns}: Pod Security level {level!r} is not one of {PSA_LEVELS}")
        self.group = k8s.yaml.v2.ConfigGroup(
            f"{name}-group",
            objs=[
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {
                        "name": ns,
                        "labels": {
                            "pod-security.kubernetes.io/enforce": level,
                            # Audit and warn at `restricted` show what keeps a namespace below it.
                            "pod-security.kubernetes.io/audit": "restricted",
                            "pod-security.kubernetes.io/warn": "restricted",
                        },
                    },
                }
                for ns, level in sorted(args.namespaces.items())
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})
