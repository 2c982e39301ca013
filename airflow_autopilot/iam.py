"""The ``autopilot-iam-policy`` command: the least-privilege IAM policy for a DAG file's operators
(or for named classes), scoped to the resource names the DAG shows."""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow_autopilot.core.permissions import (
    HOOK_METHODS,
    USES,
    Scope,
    UnknownClassError,
    package_class,
    policy_document,
)

#: Scope field and the task attributes that name resources of that kind (``prefix`` ones get ``*``).
_NAME_ATTRIBUTES: dict[str, tuple[tuple[str, bool], ...]] = {
    "job_prefixes": (("job_name", False), ("job_name_prefix", True)),
    "groups": (("model_package_group_name", False),),
    "endpoints": (("endpoint_name", False),),
    "roles": (("role_arn", False),),
    "models": (("model_name", False),),
    "transform_jobs": (("transform_job_name_prefix", True),),
}
#: A watcher's job filter (its serialized ``name_prefix``) names the jobs its DAG acts on.
_NAME_ATTRIBUTES["job_prefixes"] += (("name_prefix", True),)
_URI_ATTRIBUTES = ("s3_input_uri", "validation_s3_input_uri", "s3_output_path")
#: Attributes naming a KMS key: a parameter, or (attribute, member) of a structure parameter.
_KMS_ATTRIBUTES: tuple[tuple[str, str | None], ...] = (
    ("kms_key_id", None),
    ("output_kms_key_id", None),
    ("volume_kms_key_id", None),
    ("security_config", "VolumeKmsKeyId"),
    ("data_capture_kms_key_id", None),
    ("data_capture_config", "KmsKeyId"),
)
#: What a value the generator cannot render becomes.
WILDCARD = "*"


def _render(value: Any, params: dict[str, Any]) -> str | None:
    """``value`` rendered with the DAG's param defaults; anything else a template refers to (an
    XCom, ``ds``) becomes ``*``; ``None`` when ``value`` is not a string (an XComArg)."""
    if not isinstance(value, str):
        return None
    if "{{" not in value:
        return value
    import jinja2

    class Wild(jinja2.Undefined):
        def __str__(self) -> str:
            return WILDCARD

        def __call__(self, *args: Any, **kwargs: Any) -> Wild:  # type: ignore[override]
            return self

        def __getattr__(self, name: str) -> Wild:
            return self

        def __getitem__(self, key: Any) -> Wild:  # type: ignore[override]
            return self

    try:
        return jinja2.Environment(undefined=Wild).from_string(value).render(params=params)
    except Exception:  # noqa: BLE001 - a template we cannot render is a wildcard
        return WILDCARD


def _bucket(uri: str | None) -> str | None:
    if not uri or not uri.startswith("s3://"):
        return None
    return uri[5:].split("/", 1)[0] or None


def scope_for(tasks: Iterable[Any], params: dict[str, Any], region: str = "*", account: str = "*") -> Scope:
    """The :class:`Scope` the tasks' resource names show.

    A name the tasks give that cannot be rendered (an XCom, a runtime macro) is taken to be one of
    the names the DAG does show, when it shows any (a sensor waiting for the job the DAG created);
    when it shows none, the kind of resource is not narrowed (a wildcard).

    :param tasks: the DAG's tasks.
    :param params: the DAG's param defaults (what ``{{ params.x }}`` renders to).
    :param region: the region of the ARNs.
    :param account: the account of the ARNs.
    """
    scope = Scope(region=region, account=account)
    for field_name, attributes in _NAME_ATTRIBUTES.items():
        names: set[str] = set()
        for task in tasks:
            for attribute, is_prefix in attributes:
                rendered = _render(getattr(task, attribute, None), params)
                if rendered and rendered != "None" and WILDCARD not in rendered:
                    names.add(f"{rendered}*" if is_prefix else rendered)
        setattr(scope, field_name, names or None)
    buckets: set[str] = set()
    for task in tasks:
        for attribute in _URI_ATTRIBUTES:
            bucket = _bucket(_render(getattr(task, attribute, None), params))
            if bucket and WILDCARD not in bucket:
                buckets.add(bucket)
    scope.buckets = buckets or None
    queues = {
        url.rstrip("/").rsplit("/", 1)[-1]
        for task in tasks
        if (url := _render(getattr(task, "sqs_queue", None), params)) and WILDCARD not in url
    }
    scope.queues = queues or None
    keys: set[str] = set()
    for task in tasks:
        for attribute, member in _KMS_ATTRIBUTES:
            value = getattr(task, attribute, None)
            if member is not None:
                value = value.get(member) if isinstance(value, dict) else None
            if value is None:
                continue
            rendered = _render(value, params)
            if rendered is None or WILDCARD in rendered:
                keys.add(WILDCARD)  # computed at run time: any key of the account
            elif rendered != "None":
                keys.add(rendered)
    scope.kms_keys = keys or None
    return scope


def dag_classes(tasks: Iterable[Any]) -> list[str]:
    """The package classes among ``tasks`` (subclasses count as their package class)."""
    return sorted({name for name in map(package_class, tasks) if name})


def dag_watchers(dag: Any) -> list[Any]:
    """The triggers of the AssetWatchers on the assets ``dag`` is scheduled on (Airflow 3): the
    triggerer runs them with the DAG's connection, so their calls belong in its policy.

    :param dag: the DAG.
    """
    condition = getattr(getattr(dag, "timetable", None), "asset_condition", None)
    found: list[Any] = []

    def walk(node: Any) -> None:
        for child in getattr(node, "objects", None) or ():
            walk(child)
        found.extend(w.trigger for w in getattr(node, "watchers", None) or () if getattr(w, "trigger", None))

    walk(condition)
    return found


@dataclass
class HookCall:
    """A call a task's own code (a ``@task`` body) makes to a method of this package's hooks.

    :param method: the :data:`~airflow_autopilot.core.permissions.HOOK_METHODS` key.
    :param arguments: the arguments the generator can read (literals and module constants),
        by parameter name; the rest are unknown at parse time.
    """

    method: str
    arguments: dict[str, Any] = field(default_factory=dict)


def _hook_classes() -> dict[str, type]:
    from airflow_autopilot.hooks import AutopilotHook, AutopilotModelHook

    return {cls.__name__: cls for cls in (AutopilotHook, AutopilotModelHook)}


def _constant(node: ast.expr, names: dict[str, Any]) -> Any:
    """A literal, or a module-level name's value; ``None`` for anything computed at run time."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        value = names.get(node.id)
        return value if isinstance(value, (str, int, float)) else None
    return None


def task_hook_calls(func: Any) -> list[HookCall]:
    """The hook methods ``func`` (a ``@task``'s callable) calls on this package's hooks, read from
    its source: a method of a hook class the body names, called as ``<hook>.<method>(...)``.

    :param func: the task's Python callable.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return []
    classes = _hook_classes()
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in classes}
    named |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in classes}
    names = dict(getattr(func, "__globals__", {}))
    calls = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        for class_name in sorted(named):
            # A method a hook inherits is listed under the class that defines it.
            owner = next(
                (
                    c.__name__
                    for c in classes[class_name].__mro__
                    if f"{c.__name__}.{node.func.attr}" in HOOK_METHODS
                ),
                None,
            )
            if owner is None:
                continue
            method = getattr(classes[class_name], node.func.attr)
            try:
                bound = inspect.signature(method).bind_partial(
                    None, *node.args, **{k.arg: k.value for k in node.keywords if k.arg}
                )
            except TypeError:
                bound = None
            arguments = {}
            for name, value in bound.arguments.items() if bound else ():
                if isinstance(value, ast.expr):
                    arguments[name] = _constant(value, names)
            calls.append(HookCall(f"{owner}.{node.func.attr}", arguments))
            break
    return calls


def load_dags(path: Path) -> list[Any]:
    """Every DAG the file defines, parsed as Airflow parses it.

    :param path: the DAG file.
    """
    from airflow_autopilot.demo.runner import dags_in_file

    return dags_in_file(path)


def _params(dag: Any) -> dict[str, Any]:
    """The DAG's param defaults."""
    return dict(dag.params.dump()) if hasattr(dag.params, "dump") else dict(dag.params)


@dataclass
class DagNeeds:
    """What a DAG's policy is made of.

    :param classes: this package's classes among its tasks and its asset watchers' triggers.
    :param methods: the hook methods its own ``@task`` bodies call.
    :param scope: the resource names they show.
    """

    classes: list[str]
    methods: list[str]
    scope: Scope


def dag_needs(dag: Any, region: str = "*", account: str = "*") -> DagNeeds:
    """The classes, hook methods and resource names of one DAG: its operators and sensors, the
    triggers of the asset watchers it is scheduled on, and the hook calls in its ``@task`` bodies.

    :param dag: the DAG.
    :param region: the region of the ARNs.
    :param account: the account of the ARNs.
    """
    watchers = dag_watchers(dag)
    calls = [c for task in dag.tasks for c in task_hook_calls(getattr(task, "python_callable", None))]
    # Resource names: the tasks' attributes, the watchers' serialized arguments, the hook calls'.
    named = [
        *dag.tasks,
        *(SimpleNamespace(**w.serialize()[1]) for w in watchers),
        *(SimpleNamespace(**c.arguments) for c in calls),
    ]
    scope = scope_for(named, _params(dag), region, account)
    for call in calls:
        for field_name, attributes in _NAME_ATTRIBUTES.items():
            if any(
                attribute in call.arguments and call.arguments[attribute] is None
                for attribute, _ in attributes
            ):
                setattr(scope, field_name, None)  # a name the task's own code computes: any name
    # A hook call that names its endpoint config picks a name the operators' pattern may not match.
    configs = {str(c.arguments["config_name"] or WILDCARD) for c in calls if "config_name" in c.arguments}
    scope.endpoint_configs = {WILDCARD} if WILDCARD in configs else configs or None
    return DagNeeds(
        classes=dag_classes([*dag.tasks, *watchers]),
        methods=sorted({c.method for c in calls}),
        scope=scope,
    )


def dag_policy(dag: Any, region: str = "*", account: str = "*", omit: Iterable[str] = ()) -> dict[str, Any]:
    """The policy document for one DAG.

    :param dag: the DAG.
    :param region: the region of the ARNs.
    :param account: the account of the ARNs.
    :param omit: statement ids to leave out.
    """
    needs = dag_needs(dag, region, account)
    return policy_document(needs.classes, needs.scope, omit=omit, methods=needs.methods)


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="autopilot-iam-policy",
        description="Print the least-privilege IAM policy for a DAG's Autopilot operators "
        "(explained in docs/security.md).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("dag_file", nargs="?", type=Path, help="a DAG file")
    source.add_argument("--operators", help="comma-separated class names instead of a DAG file")
    parser.add_argument("--region", default="*", help="region of the ARNs (default any)")
    parser.add_argument("--account", default="*", help="account id of the ARNs (default any)")
    for flag, what in (
        ("--job-name-prefix", "AutoML job name prefix"),
        ("--bucket", "S3 bucket"),
        ("--model-package-group", "model package group"),
        ("--endpoint", "endpoint name"),
        ("--role-arn", "execution role ARN"),
        ("--kms-key", "KMS key (ARN, id or alias) the requests name, such as a connection's default"),
    ):
        parser.add_argument(flag, action="append", help=f"{what} to scope to (repeatable; adds to the DAG's)")
    return parser


def _with_overrides(scope: Scope, args: argparse.Namespace) -> Scope:
    for field_name, values, suffix in (
        ("job_prefixes", args.job_name_prefix, "*"),
        ("buckets", args.bucket, ""),
        ("groups", args.model_package_group, ""),
        ("endpoints", args.endpoint, ""),
        ("roles", args.role_arn, ""),
        ("kms_keys", args.kms_key, ""),
    ):
        if values:
            given = getattr(scope, field_name) or set()
            setattr(scope, field_name, given | {f"{v}{suffix}" for v in values})
    return scope


def main(argv: Sequence[str] | None = None) -> int:
    """Print the policy (one document per DAG the file defines, keyed by DAG id when several).

    :param argv: arguments, default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    documents: dict[str, Any] = {}
    try:
        if args.operators:
            classes = [name.strip() for name in args.operators.split(",") if name.strip()]
            scope = _with_overrides(Scope(region=args.region, account=args.account), args)
            documents["policy"] = policy_document(classes, scope)
        else:
            for dag in load_dags(args.dag_file):
                needs = dag_needs(dag, args.region, args.account)
                scope = _with_overrides(needs.scope, args)
                documents[dag.dag_id] = policy_document(needs.classes, scope, methods=needs.methods)
    except UnknownClassError as err:
        parser.error(str(err))
    except (OSError, ImportError, SyntaxError) as err:
        parser.error(f"dag_file: cannot load {args.dag_file}: {err}")
    if not documents:
        parser.error(f"dag_file: {args.dag_file} defines no DAG")
    output = next(iter(documents.values())) if len(documents) == 1 else documents
    print(json.dumps(output, indent=2))
    return 0


__all__ = ["USES", "DagNeeds", "HookCall", "dag_needs", "dag_policy", "main", "scope_for", "task_hook_calls"]

if __name__ == "__main__":
    sys.exit(main())
