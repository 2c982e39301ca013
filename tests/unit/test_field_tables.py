"""The request tables against botocore's SageMaker model: every entry's path exists, and its type,
enum, pattern, lengths and range are the model's (or deliberately stricter, with the reason given)."""

from __future__ import annotations

import re
from typing import Any

import botocore
import botocore.session
import pytest

from airflow_autopilot.core.fields import RequestSpec
from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB, CREATE_AUTOML_JOB_V2
from airflow_autopilot.core.fields.endpoint import ENDPOINT, ENDPOINT_CONFIG, UPDATE_ENDPOINT
from airflow_autopilot.core.fields.model import MODEL
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.spec import BOTOCORE_KINDS as KINDS
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB

SPECS: list[RequestSpec] = [
    CREATE_AUTOML_JOB,
    CREATE_AUTOML_JOB_V2,
    TRANSFORM_JOB,
    MODEL,
    ENDPOINT_CONFIG,
    ENDPOINT,
    UPDATE_ENDPOINT,
    MODEL_PACKAGE,
]

#: The tables follow botocore 1.43's model. Older ones (the floors leg's 1.37) lack enum values and
#: relaxed requirements added since, so only types, patterns, lengths and ranges are checked there.
OLDER_MODEL = tuple(int(part) for part in botocore.__version__.split(".")[:2]) < (1, 43)

#: Rules of the model the tables leave out on purpose, (operation, path, rule) -> why.
NOT_CHECKED = {
    # Python's re has no \p{L} classes; SageMaker checks the tag characters itself.
    ("CreateAutoMLJob", "Tags[].Key", "pattern"): "\\p{...} classes are not Python regular expressions",
    ("CreateAutoMLJob", "Tags[].Value", "pattern"): "\\p{...} classes are not Python regular expressions",
    ("CreateAutoMLJobV2", "Tags[].Key", "pattern"): "\\p{...} classes are not Python regular expressions",
    ("CreateAutoMLJobV2", "Tags[].Value", "pattern"): "\\p{...} classes are not Python regular expressions",
    # A metric's validity depends on the problem type: a cross-field rule checks it.
    ("CreateAutoMLJob", "AutoMLJobObjective.MetricName", "enum"): "checked per problem type by a rule",
    ("CreateAutoMLJobV2", "AutoMLJobObjective.MetricName", "enum"): "checked per problem type by a rule",
    # Which algorithms are allowed depends on the mode or problem type: rules check them.
    (
        "CreateAutoMLJob",
        "AutoMLJobConfig.CandidateGenerationConfig.AlgorithmsConfig[].AutoMLAlgorithms",
        "member",
    ): "per mode",
    # ContentType: the V2 rule checks it per problem type; the model says only ".*".
    ("CreateAutoMLJob", "InputDataConfig[].ContentType", "pattern"): "an enum replaces '.*'",
    (
        "CreateAutoMLJobV2",
        "AutoMLJobInputDataConfig[].ContentType",
        "pattern",
    ): "checked per problem type by a rule",
    # The quantile pattern is anchored in the model ("(^p[1-9]\\d?$)"); fullmatch anchors ours.
    (
        "CreateAutoMLJobV2",
        "AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig.ForecastQuantiles[]",
        "pattern",
    ): "same rule, anchored by fullmatch",
    (
        "CreateAutoMLJobV2",
        "AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig.ForecastQuantiles[]",
        "length",
    ): "the pattern implies 2 to 3 characters",
    # The model allows an S3 URI of 0 characters; the pattern refuses it anyway.
    # Instance types: botocore enumerates each request's, and every release adds some; the pattern
    # ml.<family>.<size> accepts each of them (test below) and new ones without a botocore upgrade.
    ("CreateTransformJob", "TransformResources.InstanceType", "enum"): "a pattern accepting each",
    ("CreateTransformJob", "TransformResources.InstanceType", "pattern"): "stands for the enum",
    ("CreateEndpointConfig", "ProductionVariants[].InstanceType", "enum"): "a pattern accepting each",
    ("CreateEndpointConfig", "ProductionVariants[].InstanceType", "pattern"): "stands for the enum",
    # The operator registers versions in a group it creates by name: no group ARN (the entry says so).
    ("CreateModelPackage", "ModelPackageGroupName", "pattern"): "a name, not an ARN",
    ("CreateModelPackage", "ModelPackageGroupName", "length"): "a name, not an ARN",
}
#: Patterns that say nothing (any text).
ANY_TEXT = (".*", "[\\S\\s]*")


@pytest.fixture(scope="module")
def model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def shape_at(spec: RequestSpec, model: Any, path: str) -> Any:
    """The botocore shape a table path names (``A[]`` is A's member, ``*`` any structure member)."""
    shape = model.operation_model(spec.operation).input_shape
    for segment in path.split("."):
        if segment == "*":
            if shape.type_name == "map":  # any key: the map's values
                shape = shape.value
                continue
            # every member of a union-like structure has the same shape below here
            members = list(shape.members.values())
            shape = members[0]
            continue
        name = segment.removesuffix("[]")
        assert shape.type_name == "structure", (spec.operation, path, segment)
        assert name in shape.members, f"{spec.operation}: {path}: no member {name} in {shape.name}"
        shape = shape.members[name]
        if segment.endswith("[]"):
            assert shape.type_name == "list", (spec.operation, path)
            shape = shape.member
    return shape


def unanchored(pattern: str) -> str:
    """A model pattern without the ``^`` and ``$`` anchors older botocore models write (fullmatch
    anchors ours)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


def entries() -> list[tuple[RequestSpec, Any]]:
    return [(spec, entry) for spec in SPECS for entry in spec.fields]


@pytest.mark.parametrize(
    ("spec", "entry"), entries(), ids=lambda x: getattr(x, "path", getattr(x, "operation", ""))
)
def test_each_entry_matches_the_model(spec, entry, model):
    shape = shape_at(spec, model, entry.path)
    where = f"{spec.operation} {entry.path}"
    if entry.kind != "any":
        assert KINDS[shape.type_name] == entry.kind, where
    meta = dict(shape.metadata)
    if "pattern" in meta:
        meta["pattern"] = unanchored(meta["pattern"])
    skip = {rule for (op, path, rule) in NOT_CHECKED if op == spec.operation and path == entry.path}
    # enum: ours is the model's, or a documented subset
    model_enum = list(getattr(shape, "enum", None) or [])
    if entry.enum:
        skip.add("length")  # the values bound it
    if OLDER_MODEL:
        skip.add("enum")
    if model_enum and "enum" not in skip:
        assert entry.enum, f"{where}: the model has an enum {model_enum}"
        assert set(entry.enum) <= set(model_enum), where
        if set(entry.enum) != set(model_enum):
            assert entry.stricter, f"{where}: a subset of the model's enum needs a reason"
    elif entry.enum and not OLDER_MODEL:
        assert entry.stricter or "pattern" in skip, f"{where}: an enum the model does not have needs a reason"
    # pattern: the model's, word for word (none where the model's allows any text or uses \p{...}
    # classes, which Python's re does not have)
    if meta.get("pattern") in ANY_TEXT or "\\p{" in meta.get("pattern", ""):
        skip.add("pattern")
    if "pattern" in meta and "pattern" not in skip:
        assert entry.pattern == meta["pattern"] or (entry.enum and entry.stricter), where
    elif entry.pattern is not None and "pattern" not in skip:
        assert "pattern" in meta or entry.stricter, f"{where}: a pattern the model does not have"
    # lengths (strings: characters; lists, maps: entries) and numeric ranges
    is_number = shape.type_name in ("integer", "long", "float", "double")
    if "length" not in skip and not is_number:
        if "max" in meta:
            assert entry.max_length == meta["max"], where
        if meta.get("min", 0) > 0 and not entry.enum:
            assert (entry.min_length or 0) >= meta["min"] or entry.required, where
    if is_number:
        if "min" in meta:
            assert entry.minimum == meta["min"], where
        if "max" in meta:
            assert entry.maximum == meta["max"], where
        elif entry.maximum is not None:
            assert entry.stricter, f"{where}: a maximum the model does not have needs a reason"
        if entry.exclusive:
            assert entry.stricter, f"{where}: exclusive bounds need a reason"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.operation)
def test_required_members_of_the_model_are_required_in_the_table(spec, model):
    """Where the table describes a structure's member the model requires, the table requires it too."""
    for entry in spec.fields:
        if entry.path.endswith("[]"):
            continue  # a list's entries, not a member
        parent, _, name = entry.path.rpartition(".")
        shape = (
            model.operation_model(spec.operation).input_shape if not parent else shape_at(spec, model, parent)
        )
        if OLDER_MODEL:
            pytest.skip("requirements follow botocore 1.43's model; this one is older")
        if shape.type_name == "structure" and name.removesuffix("[]") in shape.required_members:
            assert entry.required, f"{spec.operation} {entry.path} is required by the model"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.operation)
def test_every_top_level_member_of_the_table_is_in_the_model(spec, model):
    members = set(model.operation_model(spec.operation).input_shape.members)
    assert spec.known_keys <= members


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (s, path)
        for s in SPECS
        for (op, path, rule) in NOT_CHECKED
        if op == s.operation and NOT_CHECKED[(op, path, rule)] == "a pattern accepting each"
    ],
    ids=lambda x: getattr(x, "operation", x),
)
def test_an_instance_type_pattern_accepts_every_type_the_model_lists(spec, path, model):
    entry = spec.by_path[path]
    refused = [t for t in shape_at(spec, model, path).enum if not re.fullmatch(entry.pattern, t)]
    assert refused == [], f"{spec.operation} {path}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.operation)
def test_every_member_the_model_requires_is_in_the_table(spec, model):
    required = set(model.operation_model(spec.operation).input_shape.required_members)
    assert required <= spec.known_keys, spec.operation


@pytest.mark.parametrize("spec", SPECS[:2], ids=lambda s: s.operation)  # the AutoML tables
def test_tag_messages_name_the_owner_tag_the_operator_adds(spec):
    from airflow_autopilot.core.naming import OWNER_TAG_KEY

    assert repr(OWNER_TAG_KEY) in spec.parameter_for("Tags[3].Key")
