"""Container registries for the microservices and the GitHub Actions roles that push to them."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import clip, document
from components.identity import AwsIdentity, existing
from components.kms import EncryptionKey, EncryptionKeyArgs

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"

# Everything `docker push`, the image scan step and promotion (skopeo reading the layers it
# copies) need, on one repository.
PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImageScanFindings",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]


@dataclass(frozen=True, kw_only=True)
class ServiceRegistry:
    name: str
    github_repository: str
    # The repository part of GitHub's `sub` claim (`repo:<owner>/<repo>`, or with GitHub's immutable
    # IDs for repositories created after 2026-06-18: stacks/delivery.py ServiceConfig.github_subject).
    subject: str
    branch: str


@dataclass(frozen=True, kw_only=True)
class RegistryArgs:
    identity: AwsIdentity
    # The stack's permissions boundary (arn:<partition>:iam::<account>:policy/<prefix>-boundary), on
    # every role created here: the deploy role may create roles only with it. None: no boundary.
    permissions_boundary: pulumi.Input[str] | None
    prefix: str
    services: tuple[ServiceRegistry, ...]
    existing_oidc_provider_arn: str | None
    keep_tagged_images: int
    untagged_image_days: int
    key_deletion_window_days: int
    # Production: protected, and kept in AWS (images included) if the stack is ever destroyed.
    protect: bool


def lifecycle_policy(keep_tagged: int, untagged_days: int) -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"Expire untagged images after {untagged_days} days",
                    "selection": {
                        "tagStatus": "untagged",
                        "countType": "sinceImagePushed",
                        "countUnit": "days",
                        "countNumber": untagged_days,
                    },
                    "action": {"type": "expire"},
                },
                {
                    "rulePriority": 2,
                    "description": f"Keep the last {keep_tagged} tagged images",
                    "selection": {
                        "tagStatus": "tagged",
                        "tagPatternList": ["*"],
                        "countType": "imageCountMoreThan",
                        "countNumber": keep_tagged,
                    },
                    "action": {"type": "expire"},
                },
            ]
        }
    )


def service_workflows(repository: str, service: str, branch: str) -> list[str]:
    """The `job_workflow_ref` values of a service's own workflows on its branch: the build
    (`<service>.yml`) and the promotion (`<service>-promote.yml`), whose jobs push and copy."""
    return [
        f"{repository}/.github/workflows/{service}{suffix}.yml@refs/heads/{branch}"
        for suffix in ("", "-promote")
    ]


def github_trust(provider_arn: str, subject: str, branch: str, workflows: list[str]) -> str:
    """Trust for GitHub Actions OIDC: only jobs that the given workflow files define, on pushes to
    (or dispatches on) one branch of one repository.

    `sub` alone (`<subject>:ref:refs/heads/<branch>`; the subject is `repo:<owner>/<repo>`, or
    carries GitHub's immutable IDs for newer repositories) is the same for every workflow of the
    branch, so every service's role would trust every workflow of the repository. AWS STS
    evaluates GitHub's `job_workflow_ref` claim as the condition key
    `token.actions.githubusercontent.com:job_workflow_ref` (AWS What's New, January 2026, "AWS STS
    supports validation of identity provider claims"; IAM User Guide, condition keys for GitHub
    federation). The claim names the workflow file that defines the job asking for the token,
    `<owner>/<repo>/.github/workflows/<file>@<ref>`; for a job of a reusable workflow it names the
    reusable file (GitHub docs, "OpenID Connect reference"; sigstore/fulcio's GitHub principal
    requires the claim on every token, reusable or not, pkg/identity/github/principal.go). So the
    jobs that push and copy are defined in each service's own files and run composite actions
    (.github/actions/push-image, promote-image), which leave the claim alone.
    """
    return document(
        {
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                    f"{GITHUB_OIDC_HOST}:sub": f"{subject}:ref:refs/heads/{branch}",
                    f"{GITHUB_OIDC_HOST}:job_workflow_ref": workflows,
                }
            },
        }
    )


def _trust_for(svc: ServiceRegistry, provider_arn: str) -> str:
    workflows = service_workflows(svc.github_repository, svc.name, svc.branch)
    return github_trust(provider_arn, svc.subject, svc.branch, workflows)


class Registry(pulumi.ComponentResource):
    """One ECR repository per microservice and one CI role per service, for GitHub Actions.

    Guarantees: immutable tags, scan on push, KMS encryption with the registry's own
    customer-managed key (rotated; its policy delegates to IAM, and ECR uses the key through the
    grant it creates when a repository is created, so pushing and pulling need no KMS permission:
    AWS ECR User Guide, "Encryption at rest"), a lifecycle that keeps the last N tagged images and
    expires untagged ones, `protect` and `retain_on_delete` in prod (a rebuilt stack of the same name
    adopts a retained repository, under the key its images are encrypted with), `force_delete`
    elsewhere (a destroy deletes the repository with its images);
    each CI role trusts only GitHub's OIDC tokens of its own service's two workflow files on one
    repository's one branch (the `sub` and `job_workflow_ref` claims), and may push to and pull
    from its own repository alone (plus `ecr:GetAuthorizationToken`, which has no resource scope).
    No long-lived keys exist. It does not build images (GitHub does).
    """

    repository_urls: pulumi.Output[dict[str, str]]
    ci_role_arns: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("platform:registry:Registry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ident = args.identity

        # An account holds one provider per issuer URL: reuse it when the config names one.
        provider_arn: pulumi.Input[str] | None = args.existing_oidc_provider_arn
        if provider_arn is None and args.services:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc", url=GITHUB_OIDC_URL, client_id_lists=["sts.amazonaws.com"], opts=child
            )
            provider_arn = provider.arn

        urls: dict[str, pulumi.Output[str]] = {}
        roles: dict[str, pulumi.Output[str]] = {}
        if args.services:
            key = EncryptionKey(
                f"{name}-images",
                EncryptionKeyArgs(
                    identity=ident,
                    description=f"{args.prefix}: ECR repositories of the platform's services",
                    log_group_patterns=(),
                    deletion_window_days=args.key_deletion_window_days,
                    protect=args.protect,
                ),
                opts=child,
            )
            for svc in args.services:
                repo_name = f"{args.prefix}/{svc.name}"
                # Prod retains a repository (its images), so the next stack of the same name adopts
                # it. Its encryption cannot change in place (encryption_configuration is ForceNew:
                # terraform-provider-aws internal/service/ecr/repository.go), so the adopted one keeps
                # the (retained) key that encrypts its images; new repositories get the new key.
                held = (
                    existing("aws:ecr/repository:Repository", repo_name, pulumi.InvokeOptions(parent=self))
                    if args.protect
                    else None
                )
                repo = aws.ecr.Repository(
                    f"{name}-{svc.name}",
                    name=repo_name,
                    image_tag_mutability="IMMUTABLE",
                    # DeleteRepository fails with RepositoryNotEmptyException once CI has pushed,
                    # unless forced (ECR API DeleteRepository `force`; provider `force_delete`,
                    # default false). Dev's destroy removes the images with the repository; prod's
                    # repositories are protected and kept on delete, images included.
                    force_delete=not args.protect,
                    image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                        scan_on_push=True
                    ),
                    encryption_configurations=[
                        aws.ecr.RepositoryEncryptionConfigurationArgs(
                            encryption_type="KMS",
                            kms_key=held.kms_key_arn if held and held.kms_key_arn else key.key_arn,
                        )
                    ],
                    opts=pulumi.ResourceOptions(
                        parent=self,
                        protect=args.protect,
                        retain_on_delete=args.protect,
                        import_=held.import_id if held else None,
                    ),
                )
                aws.ecr.LifecyclePolicy(
                    f"{name}-{svc.name}",
                    repository=repo.name,
                    policy=lifecycle_policy(args.keep_tagged_images, args.untagged_image_days),
                    opts=child,
                )
                role = aws.iam.Role(
                    f"{name}-{svc.name}-ci",
                    name=clip(f"{name}-{svc.name}-ci"),
                    description=(
                        f"GitHub Actions of {svc.github_repository}@{svc.branch}: push {svc.name} images"
                    ),
                    assume_role_policy=pulumi.Output.from_input(provider_arn).apply(
                        functools.partial(_trust_for, svc)
                    ),
                    permissions_boundary=args.permissions_boundary,
                    max_session_duration=3600,
                    opts=child,
                )
                aws.iam.RolePolicy(
                    f"{name}-{svc.name}-ci",
                    role=role.id,
                    policy=repo.arn.apply(
                        lambda arn: document(
                            {
                                "Sid": "Login",
                                "Effect": "Allow",
                                "Action": "ecr:GetAuthorizationToken",
                                "Resource": "*",
                            },
                            {
                                "Sid": "PushThisRepositoryOnly",
                                "Effect": "Allow",
                                "Action": PUSH_ACTIONS,
                                "Resource": arn,
                            },
                        )
                    ),
                    opts=child,
                )
                urls[svc.name] = repo.repository_url
                roles[svc.name] = role.arn
        self.registry = f"{ident.account_id}.dkr.ecr.{ident.region}.{ident.dns_suffix}"
        self.repository_urls = pulumi.Output.all(**urls) if urls else pulumi.Output.from_input({})
        self.ci_role_arns = pulumi.Output.all(**roles) if roles else pulumi.Output.from_input({})
        self.register_outputs({"repository_urls": self.repository_urls, "ci_role_arns": self.ci_role_arns})
