"""The offline engine: run the real `__main__.py` under Pulumi's mocks and record every resource.

Defined once and used by both `make plan` and the unit tests. Provider calls are answered with
realistic values for the configured region; resource registrations are recorded with everything
the engine would see (parent, provider, protect, dependencies, inputs) so that the plan and the
tests read the same facts. What it records (Registration, PlanResult, Account) is the plan
document's model, model/records.py, which the analyses read without this engine.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import runpy
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks as _mocks
from pulumi.runtime import settings as _settings
from pulumi.runtime.proto import resource_pb2

from model.records import SECRET_SIG, Account, PlanResult, Registration
from stacks.config import OFFLINE_KEY, SECRET_PLACEHOLDER
from stacks.data import compose_yaml, load_yaml, read_yaml
from stacks.errors import repeated_key
from tools import checkout

ROOT = checkout.ROOT
stack_names = checkout.stack_names  # every stack of the checkout
PROGRAM = ROOT / "__main__.py"
ACCOUNT_ID = "123456789012"
_RESOURCE_REF = "5cf8f73096256a8f31e491e813e4eb8e"


def _ints(value: Any) -> Any:
    """protobuf Structs carry every number as a float; give whole numbers back their int type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def _sorted_keys(value: Any) -> Any:
    """The same value with every mapping's keys in sorted order, so the plan prints the same bytes
    whatever order the SDK serialised a map in (list order is meaning, and is kept)."""
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def canonical_order(records: list[Registration]) -> list[Registration]:
    """Parents before children, siblings by URN: the same order on every run.

    The SDK registers resources as their inputs resolve, so arrival order at the monitor changes
    from run to run; a depth-first walk of the parent tree with URN-sorted siblings does not, and
    still lists every parent before its children (the plan's tree relies on that).
    """
    known = {r.urn for r in records}
    children: dict[str | None, list[Registration]] = {}
    for r in records:
        children.setdefault(r.parent if r.parent in known else None, []).append(r)
    ordered: list[Registration] = []
    stack = sorted(children.get(None, []), key=lambda r: r.urn, reverse=True)
    while stack:
        r = stack.pop()
        ordered.append(r)
        stack.extend(sorted(children.get(r.urn, []), key=lambda c: c.urn, reverse=True))
    return ordered


class RecordingMonitor(_mocks.MockMonitor):
    """MockMonitor that records each registration and never advertises resource references.

    Without resource references, a Resource passed as an input (`ManagedNodeGroup(cluster=...)`)
    arrives as its URN or ID instead of being rebuilt on the monitor's thread, which hangs or
    fails with "attached to a different loop" (the pulumi SDK's pulumi/runtime/mocks.py:
    MockMonitor deserializes inputs on its executor thread).
    """

    def __init__(self, mocks: _mocks.Mocks):
        super().__init__(mocks)
        self.records: list[Registration] = []
        # Children the mocks built for a packaged component, by (type, name), until it is recorded.
        self.children: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        return resource_pb2.DeploymentInfo(
            supportedFeatures=[
                f
                for f in info.supportedFeatures
                if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES
            ]
        )

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.records.append(
                Registration(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent or None,
                    custom=bool(request.custom),
                    provider=request.provider or None,
                    providers=dict(sorted(request.providers.items())),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    dependencies=sorted(set(request.dependencies)),
                    raw_inputs=_sorted_keys(_ints(json_format.MessageToDict(request.object))),
                    import_id=request.importId or None,
                    ignore_changes=sorted(request.ignoreChanges),
                    children=self.children.pop((request.type, request.name), []),
                )
            )
        return response


class PlatformMocks(_mocks.Mocks):
    """Answers provider calls and resource creations with realistic values for one region."""

    def __init__(self, region: str, account: Account | None = None):
        self.region = region
        self.account = account or Account()
        self.monitor: RecordingMonitor | None = None
        # Every provider function the program called, with its arguments and the answer: what the
        # program looks up before it creates (e.g. a log group to adopt), for the analyses to see.
        self.lookups: list[dict[str, Any]] = []

    # -- provider functions -------------------------------------------------------------------
    def call(self, args: _mocks.MockCallArgs) -> Any:
        result = self._answer(args)
        self.lookups.append(
            {"token": args.token, "args": _sorted_keys(dict(args.args)), "result": _sorted_keys(result)}
        )
        return result

    def _answer(self, args: _mocks.MockCallArgs) -> dict[str, Any]:  # noqa: PLR0911
        token, region = args.token, self.region
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/deployer",
                "userId": "AROAEXAMPLE:deployer",
                "id": ACCOUNT_ID,
            }
        if token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }
        if token == "aws:index/getRegion:getRegion":
            return {
                "region": region,
                "name": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            }
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{region}{s}" for s in "abcdef"]
            return {
                "names": names,
                "zoneIds": [f"use1-az{i + 1}" for i in range(len(names))],
                "groupNames": [region] * len(names),
                "id": region,
            }
        if token == "aws:cloudwatch/getLogGroups:getLogGroups":
            prefix = str(args.args.get("logGroupNamePrefix", ""))
            names = sorted(n for n in self.account.log_groups if n.startswith(prefix))
            return {
                "logGroupNames": names,
                "arns": [self._arn("logs", f"log-group:{n}") for n in names],
                "id": region,
            }
        if token == "aws:cloudwatch/getLogGroup:getLogGroup":
            name = str(args.args.get("name"))
            if name not in self.account.log_groups:
                # The provider's data source fails the same way (terraform-provider-aws
                # internal/service/logs/group_data_source.go: findLogGroupByName, not found).
                raise ValueError(f"reading CloudWatch Logs Log Group ({name}): couldn't find resource")
            return {
                **self.account.log_groups[name],
                "name": name,
                "arn": self._arn("logs", f"log-group:{name}"),
                "id": name,
            }
        if token in self.HELD:
            return self._held(token, dict(args.args))
        if token == "aws:eks/getAddonVersion:getAddonVersion":
            addon, k8s_version = args.args.get("addonName"), args.args.get("kubernetesVersion")
            pins = load_yaml("eks-addons.yaml").get(k8s_version, {})
            return {
                "version": pins.get(addon, "v1.0.0-eksbuild.1"),
                "addonName": addon,
                "kubernetesVersion": k8s_version,
                "id": f"{addon}-{k8s_version}",
            }
        raise NotImplementedError(
            f"the offline engine has no answer for provider call {token}; add one to tools/mocks.py"
        )

    # What the account holds that a rebuilt stack adopts (components/identity.py `existing`).
    HELD = (
        "aws:ecr/getRepositories:getRepositories",
        "aws:ecr/getRepository:getRepository",
        "aws:secretsmanager/getSecrets:getSecrets",
        "aws:secretsmanager/getSecret:getSecret",
    )

    def _held(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        region = self.region
        if token == "aws:ecr/getRepositories:getRepositories":
            return {"names": sorted(self.account.repositories), "id": region}
        if token == "aws:ecr/getRepository:getRepository":
            name = str(args.get("name"))
            if name not in self.account.repositories:
                raise ValueError(f"reading ECR Repository ({name}): couldn't find resource")
            return {
                **self.account.repositories[name],
                "name": name,
                "arn": self._arn("ecr", f"repository/{name}"),
                "registryId": ACCOUNT_ID,
                "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{name}",
                "id": name,
            }
        if token == "aws:secretsmanager/getSecrets:getSecrets":
            # ListSecrets' `name` filter matches prefixes and leaves out secrets scheduled for deletion.
            filters = args.get("filters") or []
            prefixes = [v for f in filters if f.get("name") == "name" for v in f["values"]]
            names = sorted(
                n
                for n, state in self.account.secrets.items()
                if not state.get("scheduledForDeletion") and any(n.startswith(p) for p in prefixes)
            )
            return {"names": names, "arns": [self._secret_arn(n) for n in names], "id": region}
        name = str(args.get("name"))  # getSecret
        held = self.account.secrets.get(name)
        if held is None or held.get("scheduledForDeletion"):
            # secret.go findSecretByID: a secret with a DeletedDate reads as not found.
            raise ValueError(f"reading Secrets Manager Secret ({name}): couldn't find resource")
        return {**held, "name": name, "arn": self._secret_arn(name), "id": self._secret_arn(name)}

    # -- resources ----------------------------------------------------------------------------
    def new_resource(self, args: _mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        name, typ, inputs = args.name, args.typ, dict(args.inputs)
        if typ == "awsx:ec2:Vpc":
            azs = inputs.get("availabilityZoneNames") or []
            return f"{name}-id", {
                "vpcId": "vpc-0123456789abcdef0",
                "privateSubnetIds": [f"subnet-private-{az}" for az in azs],
                "publicSubnetIds": [f"subnet-public-{az}" for az in azs],
                "isolatedSubnetIds": [],
            }
        if typ == "eks:index:Cluster":
            self._build_children(args)
            return f"{name}-id", self._eks_cluster(name, inputs)
        if typ == "eks:index:ManagedNodeGroup":
            return f"{name}-id", {
                "nodeGroup": self._ref(
                    "aws:eks/nodeGroup:NodeGroup",
                    name,
                    f"{name}-id",
                    {"nodeGroupName": name, "arn": self._arn("eks", f"nodegroup/{name}")},
                )
            }
        if not args.custom:
            return None, {}
        # Echo scalar inputs (and Kubernetes metadata) as outputs. Nested objects are left out:
        # the program reads none of them back, and typing them costs the SDK ~0.5 s per run
        # (pulumi._types resolves every nested output class's annotations).
        state: dict[str, Any] = {
            k: v for k, v in inputs.items() if k == "metadata" or not isinstance(v, (dict, list))
        }
        state["id"] = f"{name}-id"
        state.update(self._computed(typ, name, inputs))
        if typ.startswith("aws:"):
            state.setdefault("arn", self._arn(typ.split(":")[1].split("/")[0], name))
        return f"{name}-id", state

    def _computed(self, typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911
        """The outputs AWS (or the random provider) computes, in the shape the real ones have."""
        physical = str(inputs.get("name", name))
        if typ == "aws:iam/role:Role":
            return {
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{physical}",
                "name": physical,
                "uniqueId": "AROA" + name,
            }
        if typ == "aws:kms/key:Key":
            # AWS gives every key a new ID: a rebuilt stack's key differs from the one before.
            key = name + (f"-{self.account.generation}" if self.account.generation else "")
            return {"arn": self._arn("kms", f"key/{key}"), "keyId": f"{key}-key-id"}
        if typ == "aws:ecr/repository:Repository":
            return {
                "arn": self._arn("ecr", f"repository/{physical}"),
                "repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{self.region}.amazonaws.com/{physical}",
                "registryId": ACCOUNT_ID,
            }
        if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host = str(inputs.get("url", "")).removeprefix("https://")
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{host}"}
        if typ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {
                "latestVersion": 1,
                "defaultVersion": 1,
                "arn": self._arn("ec2", f"launch-template/{name}"),
            }
        if typ == "pulumiservice:index:AgentPool":
            # Both outputs are set at creation (agentPoolId since pulumi-pulumiservice v0.40.0);
            # the provider marks tokenValue secret.
            return {"agentPoolId": f"{name}-pool-id", "tokenValue": f"pul-token-{name}"}
        if typ == "aws:iam/policy:Policy":
            # IAM is global: no region in the ARN (the boundary's ARN is computed the same way).
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:policy/{physical}"}
        if typ == "random:index/randomPassword:RandomPassword":
            # Deterministic and recognisable, so tests can scan every input for a leak of it.
            return {"result": f"generated-{name}-Zq7v"}
        arns = {
            "aws:cloudwatch/logGroup:LogGroup": ("logs", f"log-group:{physical}"),
        }
        if typ == "aws:secretsmanager/secret:Secret":
            return {"arn": self._secret_arn(physical)}
        return {"arn": self._arn(*arns[typ])} if typ in arns else {}

    def _build_children(self, args: _mocks.MockResourceArgs) -> None:
        """Build a packaged component's children from platform/component-internals.yaml and run the
        transforms the real engine would run on them: the component's own (`args.transforms`), then
        the stack's (pulumi/pulumi pkg/resource/deploy/source_eval.go RegisterResource: a child
        collects its parents' transforms, then the stack's). Recorded with the component."""
        from analysis.internals import children

        assert self.monitor is not None, "run_program sets the monitor"
        transforms = [*args.transforms, *self.monitor.get_registered_transforms()]
        built = []
        for child in children(args.typ, args.name, args.inputs):
            props: Any = child["props"]
            opts = pulumi.ResourceOptions(ignore_changes=child["ignoreChanges"])
            for transform in transforms:
                result = transform(
                    pulumi.ResourceTransformArgs(
                        custom=True, type_=child["type"], name=child["name"], props=props, opts=opts
                    )
                )
                if inspect.isawaitable(result):
                    result = asyncio.run(_awaited(result))
                if result is not None:
                    props, opts = result.props, result.opts
            built.append(
                {**child, "props": _sorted_keys(props), "ignoreChanges": list(opts.ignore_changes or [])}
            )
        self.monitor.children[(args.typ, args.name)] = built

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def _secret_arn(self, name: str) -> str:
        # AWS appends six random characters to a secret's name in its ARN.
        return self._arn("secretsmanager", f"secret:{name}-AbCdEf")

    def _ref(self, typ: str, name: str, id_: str, state: dict[str, Any]) -> dict[str, Any]:
        """A resource reference for outputs typed as a Resource; its state answers getResource."""
        assert self.monitor is not None, "run_program sets the monitor"
        urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{typ}::{name}"
        self.monitor.resources[urn] = _mocks.MockMonitor.ResourceRegistration(urn, id_, state)
        return {SECRET_SIG: _RESOURCE_REF, "urn": urn, "id": id_}

    def _eks_cluster(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        cluster_name = inputs.get("name", name)
        oidc_id = "0123456789ABCDEF0123456789ABCDEF"
        issuer = f"oidc.eks.{self.region}.amazonaws.com/id/{oidc_id}"
        endpoint = f"https://{oidc_id}.gr7.{self.region}.eks.amazonaws.com"
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "aws",
            "clusters": [
                {
                    "name": "kubernetes",
                    "cluster": {"server": endpoint, "certificate-authority-data": "LS0tLS1CRUdJTi0tLS0t"},
                }
            ],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": [
                                "eks",
                                "get-token",
                                "--cluster-name",
                                cluster_name,
                                "--region",
                                self.region,
                                "--output",
                                "json",
                            ],
                        }
                    },
                }
            ],
        }
        cluster_arn = self._arn("eks", f"cluster/{cluster_name}")
        eks_ref = self._ref(
            "aws:eks/cluster:Cluster",
            f"{name}-eksCluster",
            cluster_name,
            {
                "name": cluster_name,
                "arn": cluster_arn,
                "endpoint": endpoint,
                "version": inputs.get("version"),
                "certificateAuthority": {"data": "LS0tLS1CRUdJTi0tLS0t"},
                "identities": [{"oidcs": [{"issuer": f"https://{issuer}"}]}],
                "vpcConfig": {
                    "clusterSecurityGroupId": "sg-0cluster0000000000",
                    "subnetIds": inputs.get("privateSubnetIds") or [],
                    "vpcId": inputs.get("vpcId"),
                },
            },
        )
        oidc_arn = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{issuer}"
        return {
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig),
            "eksCluster": eks_ref,
            "oidcProviderArn": oidc_arn,
            "oidcProviderUrl": f"https://{issuer}",
            "oidcIssuer": issuer,
            "clusterSecurityGroupId": "sg-0cluster0000000000",
        }


async def _awaited(value: Any) -> Any:
    return await value


# -- reading a stack file ----------------------------------------------------------------------


def project_name() -> str:
    return str(read_yaml(ROOT / "Pulumi.yaml")["name"])


def _engine_string(value: Any) -> str:
    """A config value as the engine passes it: strings as-is, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def stack_config(
    stack: str, project: str | None = None, document: dict[str, Any] | None = None
) -> tuple[dict[str, str], list[str]]:
    """Read `Pulumi.<stack>.yaml` (or `document`, a stack file's content) the way the engine hands
    it to a program.

    Project-level `default`/`value` entries of Pulumi.yaml apply where the stack file is silent;
    values become strings (objects, lists and booleans as JSON); bare keys join the project
    namespace; `secure:` values become a masked placeholder listed among the secret keys.
    """
    project_file = read_yaml(ROOT / "Pulumi.yaml")
    project = project or str(project_file["name"])
    raw: dict[str, str] = {}
    for key, decl in (project_file.get("config") or {}).items():
        full = key if ":" in key else f"{project}:{key}"
        for attr in ("value", "default"):
            if isinstance(decl, dict) and attr in decl:
                raw[full] = _engine_string(decl[attr])
    if document is None:
        document = read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    secret_keys: list[str] = []
    for key, value in document["config"].items():
        full = key if ":" in key else f"{project}:{key}"
        if full == f"{project}:{OFFLINE_KEY}":
            raise StackFileError(f"Pulumi.{stack}.yaml", f"{full} is set by the offline engine only")
        if isinstance(value, dict) and set(value) == {"secure"}:
            raw[full] = SECRET_PLACEHOLDER
            secret_keys.append(full)
        else:
            raw[full] = _engine_string(value)
    raw[f"{project}:{OFFLINE_KEY}"] = "true"  # stacks/config.py: planning offline
    return raw, secret_keys


class StackFileError(Exception):
    """A stack file the engine could not read at all: YAML syntax, or no `config:` mapping."""

    def __init__(self, source: str, problem: str):
        self.source, self.problem = source, problem
        super().__init__(f"{source}: {problem}")


def read_stack_file(path: Path) -> dict[str, Any]:
    """A stack file's document, with a one-line StackFileError (file:line:column) when unreadable."""
    if not path.is_file():
        stacks = ", ".join(stack_names(path.parent))
        raise StackFileError(path.name, f"no such stack file; the stacks are {stacks}")
    try:
        document = read_yaml(path)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark else path.name
        raise StackFileError(where, f"YAML syntax error: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise StackFileError(path.name, f"YAML syntax error: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise StackFileError(
            path.name,
            "has no `config:` mapping; a stack file holds its keys under `config:` (see Pulumi.dev.yaml)",
        )
    # The CLI refuses these. libyaml's parser gives the pure-Python one's nodes and marks, fifteen
    # times faster (every stack_config call composes the file).
    repeated = repeated_key(compose_yaml(path.read_text(encoding="utf-8")))
    if repeated:
        mark, why = repeated
        raise StackFileError(f"{path.name}:{mark.line + 1}:{mark.column + 1}", why)
    return document


# -- running the program -----------------------------------------------------------------------


class _ProgramLog(logging.Handler):
    """What the program logs at warning level or above (`pulumi.log.warn`). Under the mocks the SDK
    hands every log request to `MockEngine.Log`, which writes it to the logger given to `set_mocks`
    (pulumi/runtime/mocks.py; without one, the root logger, so the message lands on stderr). The
    plan keeps it instead and shows it once; the real engine still prints it on `pulumi up`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _program_logger() -> tuple[logging.Logger, _ProgramLog]:
    logger = logging.Logger("eks-platform.offline-engine")  # outside the logging tree: no root handlers
    # The SDK logs every registration at debug level (about 600 a plan): below the handler's level a
    # record is never built, which took about 8% of a plan's CPU (dev then prod, 25 runs each way).
    logger.setLevel(logging.WARNING)
    handler = _ProgramLog()
    logger.addHandler(handler)
    return logger, handler


def _without_source_positions() -> None:
    """Skip the SDK's per-resource stack capture: it only feeds the engine's source positions,
    which the offline engine does not use, and costs about 5% of a plan. Guarded, so an SDK
    without this private hook simply keeps capturing."""
    from pulumi.runtime import resource as _resource
    from pulumi.runtime.proto import source_pb2

    if hasattr(_resource, "_get_stack_trace"):
        _resource._get_stack_trace = source_pb2.StackTrace  # an empty trace


def run_program(
    stack: str,
    config: dict[str, str],
    *,
    project: str | None = None,
    secret_keys: list[str] | None = None,
    account: Account | None = None,
    entry: Path = PROGRAM,
) -> PlanResult:
    """Run `__main__.py` (or another project's `entry` program) for one stack under the mock engine and
    return what it registered.

    `account`: what AWS holds before the run (a fresh account when None). Exceptions from the
    program (a ConfigError, say) propagate to the caller.
    """
    project = project or project_name()
    _without_source_positions()
    region = config.get("aws:region", "us-east-1")
    mocks = PlatformMocks(region, account)
    monitor = RecordingMonitor(mocks)
    mocks.monitor = monitor
    _settings.ROOT.set(None)  # a fresh root Stack per run, so dev and prod can share a process
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    logger, program_log = _program_logger()
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=monitor, logger=logger
    )
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> Any:
        runpy.run_path(str(entry), run_name="__main__")
        exports = pulumi.runtime.get_root_resource().outputs  # type: ignore[union-attr]

        async def collect() -> None:
            for key, value in exports.items():
                out = pulumi.Output.from_input(value)
                outputs[key] = await out.future()
                if await out.is_secret():
                    secret_outputs.add(key)

        return asyncio.ensure_future(collect())

    program()
    outputs = _sorted_keys(outputs)
    warnings = sorted(set(program_log.messages))  # sorted: async logs arrive in no fixed order
    # Sorted, and each call once: the SDK resolves invokes concurrently, in no fixed order.
    unique = {json.dumps(c, sort_keys=True, default=str): c for c in mocks.lookups}
    lookups = [unique[k] for k in sorted(unique)]
    return PlanResult(
        project, stack, canonical_order(monitor.records), outputs, secret_outputs, warnings, lookups
    )


def run_stack(stack: str, account: Account | None = None) -> PlanResult:
    """Run one committed stack file (against `account`, a fresh account when None)."""
    project = project_name()
    config, secret_keys = stack_config(stack, project)
    return run_program(stack, config, project=project, secret_keys=secret_keys, account=account)
