"""Argo CD sign-in through the organisation's OIDC provider: `delivery.gitops.sso` of a stack file.

What each field becomes is Argo CD's own contract (argoproj/argo-cd v3.4.4, the app version of
the pinned argo-cd chart 10.1.1): `docs/operator-manual/user-management/index.md` "Existing OIDC
Provider" (`oidc.config`: issuer, clientID, clientSecret, requestedScopes,
requestedIDTokenClaims; the callback is `<url>/auth/callback`), `argocd-cm.yaml` (`url`:
"Required when configuring SSO") and `rbac.md` ("Using SSO Users/Groups": `g, <group>, <role>`
lines in `policy.csv`, `scopes` naming the claims RBAC examines).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, StrictStr, model_validator

from stacks.fields import Model, cross_field

# https://host[:port][/path], no trailing slash, query or fragment: Argo CD appends /auth/callback.
_HTTPS_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%/-]*[A-Za-z0-9._~%-])?", re.ASCII)
# Names both the Secrets Manager secret `<prefix>/<name>` and the Kubernetes Secret in `argocd`:
# a DNS label fits both.
_SECRET_SHORT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_TOKEN = re.compile(r"[!-~]{1,256}", re.ASCII)  # printable ASCII, no spaces
# A group lands in one line of Argo CD's policy.csv: a comma, quote or line break would split it.
_CSV_UNSAFE = re.compile(r'[,"\r\n]')


class SsoConfig(Model):
    """Who may sign in to Argo CD, and as what. Required in production (no local admin there)."""

    issuer: StrictStr = Field(description="OIDC issuer URL (https), exactly as the provider publishes it.")
    client_id: StrictStr = Field(
        description="Client ID of the Argo CD application registered at the provider."
    )
    client_secret_name: StrictStr = Field(
        default="argocd-oidc",
        description="Secrets Manager secret `<prefix>/<name>` (created empty by the stack) whose "
        "JSON key `clientSecret` holds the client secret.",
    )
    url: StrictStr = Field(
        default="https://localhost:8080",
        description="URL people reach Argo CD at; the provider must allow `<url>/auth/callback`.",
    )
    display_name: StrictStr = Field(default="SSO", description="Shown on the login button.")
    requested_scopes: tuple[StrictStr, ...] = Field(
        default=("openid", "profile", "email", "groups"),
        description="OIDC scopes requested at login; must include `openid`.",
    )
    groups_claim: StrictStr = Field(
        default="groups", description="ID-token claim that lists the user's groups (RBAC reads it)."
    )
    admin_groups: tuple[StrictStr, ...] = Field(description="Groups granted `role:admin`.")
    read_only_groups: tuple[StrictStr, ...] = Field(
        default=(), description="Groups granted `role:readonly`; anyone else signs in to see nothing."
    )

    @property
    def callback_url(self) -> str:
        return f"{self.url}/auth/callback"

    @model_validator(mode="after")
    def _valid(self) -> SsoConfig:
        issues: list[tuple[str, Any, str]] = []
        for key, value in (("issuer", self.issuer), ("url", self.url)):
            if not _HTTPS_URL.fullmatch(value):
                issues.append(
                    (key, value, "must be an https:// URL without a trailing slash, query or fragment")
                )
        if not _TOKEN.fullmatch(self.client_id):
            issues.append(("clientId", self.client_id, "must be the provider's client ID (no spaces)"))
        if not _SECRET_SHORT_NAME.fullmatch(self.client_secret_name):
            issues.append(
                (
                    "clientSecretName",
                    self.client_secret_name,
                    "must be a DNS label (lowercase letters, digits, '-'): it names the Secrets Manager "
                    "secret <prefix>/<name> and the Kubernetes Secret Argo CD reads",
                )
            )
        if "openid" not in self.requested_scopes:
            issues.append(("requestedScopes", list(self.requested_scopes), "must include `openid`"))
        if not _TOKEN.fullmatch(self.groups_claim):
            issues.append(("groupsClaim", self.groups_claim, "must be a claim name (no spaces)"))
        if not self.admin_groups:
            issues.append(("adminGroups", [], "list at least one group, or nobody can administer Argo CD"))
        for key, groups in (("adminGroups", self.admin_groups), ("readOnlyGroups", self.read_only_groups)):
            bad = [g for g in groups if not g.strip() or _CSV_UNSAFE.search(g)]
            if bad:
                issues.append((key, bad, "a group may not be empty or hold a comma, quote or line break"))
        both = sorted(set(self.admin_groups) & set(self.read_only_groups))
        if both:
            issues.append(("readOnlyGroups", both, "already in adminGroups; list each group once"))
        cross_field(issues)
        return self
