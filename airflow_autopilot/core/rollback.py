"""Rolling an endpoint back without AWS: which registered model version to put back, and the
BestCandidate a deploy builds from that version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_autopilot.core.promotion import (
    META_CANDIDATE_NAME,
    META_OBJECTIVE_METRIC,
    META_OBJECTIVE_TYPE,
    META_OBJECTIVE_VALUE,
    PromotionInputError,
)

#: The objective a version registered without this package's metadata gets (promotion ignores it).
UNKNOWN_METRIC = "unknown"


def model_identity(containers: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, str], ...]:
    """
    What makes two inference pipelines the same model: each container's image and model data, in
    order (the environment differs between a registered version and its deployment, which adds the
    response keys).

    :param containers: ``Containers`` of a model or of a model package's InferenceSpecification.
    """
    return tuple((str(c.get("Image") or ""), str(c.get("ModelDataUrl") or "")) for c in containers)


def package_containers(package: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The inference containers of a DescribeModelPackage response."""
    spec = package.get("InferenceSpecification") or {}
    return [dict(c) for c in spec.get("Containers") or []]


def previous_version(
    approved: Sequence[Mapping[str, Any]], serving: Sequence[Mapping[str, Any]]
) -> tuple[Mapping[str, Any] | None, str]:
    """
    The version to roll back to: the newest Approved version older than the one the endpoint
    serves; when the endpoint serves none of them, the newest Approved version.

    :param approved: the group's Approved versions (DescribeModelPackage), newest first.
    :param serving: the containers of the model the endpoint serves.
    :return: the version (``None`` when there is none to go back to) and why, for the log.
    """
    served = model_identity(serving)
    for index, package in enumerate(approved):
        if model_identity(package_containers(package)) == served:
            older = approved[index + 1] if index + 1 < len(approved) else None
            version = package.get("ModelPackageVersion")
            if older is None:
                return None, f"the endpoint serves version {version}, and no Approved version is older"
            return older, (
                f"the endpoint serves version {version}; version {older.get('ModelPackageVersion')} "
                "is the newest Approved version before it"
            )
    if not approved:
        return None, "the group has no Approved version"
    newest = approved[0]
    return newest, (
        f"the endpoint serves no Approved version of the group; version "
        f"{newest.get('ModelPackageVersion')} is the newest Approved one"
    )


def candidate_of_version(package: Mapping[str, Any]) -> dict[str, Any]:
    """
    A BestCandidate for a registered version (what the deploy operator builds an endpoint from):
    its candidate name and objective from the metadata
    :class:`~airflow_autopilot.operators.promotion.AutopilotRegisterCandidateOperator` stores, and
    its containers.

    :param package: the DescribeModelPackage response.
    :raises PromotionInputError: when the version has no containers.
    """
    containers = package_containers(package)
    if not containers:
        raise PromotionInputError(
            f"model_package_arn: version {package.get('ModelPackageArn')} has no inference containers to deploy"
        )
    meta = package.get("CustomerMetadataProperties") or {}
    name = meta.get(META_CANDIDATE_NAME) or (
        f"{package.get('ModelPackageGroupName') or 'model-package'}-v{package.get('ModelPackageVersion') or 0}"
    )
    metric: dict[str, Any] = {
        "MetricName": meta.get(META_OBJECTIVE_METRIC) or UNKNOWN_METRIC,
        "Value": meta.get(META_OBJECTIVE_VALUE) or 0.0,
    }
    if meta.get(META_OBJECTIVE_TYPE) in ("Maximize", "Minimize"):
        metric["Type"] = meta[META_OBJECTIVE_TYPE]
    return {"CandidateName": name, "FinalAutoMLJobObjectiveMetric": metric, "InferenceContainers": containers}
