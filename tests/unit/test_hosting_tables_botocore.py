"""The hosting request tables (CreateTransformJob, CreateModel, CreateEndpointConfig, CreateEndpoint,
UpdateEndpoint, CreateModelPackage) checked against botocore's SageMaker model: every entry names a
member the model has, with its type, enum, pattern, lengths, range and requiredness, except where
the entry says why it is stricter or the list below says why it differs."""

from __future__ import annotations

import functools
import re

import botocore.session
import pytest

from airflow_autopilot.core.fields.endpoint import ENDPOINT, ENDPOINT_CONFIG, UPDATE_ENDPOINT
from airflow_autopilot.core.fields.model import INSTANCE_TYPE_LOOSER, MODEL
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.spec import Field, RequestSpec
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB

SPECS = (TRANSFORM_JOB, MODEL, ENDPOINT_CONFIG, ENDPOINT, UPDATE_ENDPOINT, MODEL_PACKAGE)
KINDS = {
    "string": "str",
    "integer": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "boolean": "bool",
    "list": "list",
    "map": "map",
    "structure": "structure",
}
#: Entries that are a pattern where botocore enumerates the values: the pattern must accept each.
PATTERN_FOR_ENUM = {
    "CreateTransformJob": {"TransformResources.InstanceType": INSTANCE_TYPE_LOOSER},
    "CreateEndpointConfig": {"ProductionVariants[].InstanceType": INSTANCE_TYPE_LOOSER},
}
#: botocore patterns Python's ``re`` cannot compile (``\p{...}`` classes): the entry leaves them out.
UNICODE_CLASS = "\\p{"


@functools.cache
def service_model():
    return botocore.session.get_session().get_service_model("sagemaker")


def shape_at(operation: str, path: str):
    """botocore's shape of a table path (``A.B``, ``A[].B``, ``A.*``), or ``None`` with why."""
    shape = service_model().operation_model(operation).input_shape
    for segment in path.split("."):
        if segment == "*":
            if shape.type_name != "map":
                return None
            shape = shape.value
            continue
        name = segment.removesuffix("[]")
        if shape.type_name != "structure" or name not in shape.members:
            return None
        shape = shape.members[name]
        if segment.endswith("[]"):
            if shape.type_name != "list":
                return None
            shape = shape.member
    return shape


def required_in_model(operation: str, path: str) -> bool:
    parent, _, name = path.rpartition(".")
    shape = shape_at(operation, parent) if parent else service_model().operation_model(operation).input_shape
    return shape is not None and name.removesuffix("[]") in shape.required_members


def differences(operation: str, entry: Field) -> list[str]:
    """How ``entry`` differs from botocore's model; a difference that makes it more permissive
    than SageMaker is marked ``LOOSER``."""
    shape = shape_at(operation, entry.path)
    if shape is None:
        return [f"LOOSER {entry.path}: botocore's {operation} has no such member"]
    found = []
    if KINDS.get(shape.type_name) != entry.kind:
        found.append(f"LOOSER kind {entry.kind}, botocore {shape.type_name}")
    meta = shape.metadata
    enum = tuple(getattr(shape, "enum", None) or ())
    looser = PATTERN_FOR_ENUM.get(operation, {}).get(entry.path)
    if enum and looser:
        assert entry.pattern, entry.path
        bad = [v for v in enum if not re.fullmatch(entry.pattern, v)]
        if bad:
            found.append(f"LOOSER pattern {entry.pattern} refuses botocore's {bad}")
    elif enum or entry.enum:
        if not enum:
            found.append(f"enum {entry.enum}, botocore none")
        elif not entry.enum or not set(entry.enum) <= set(enum):
            found.append(f"LOOSER enum {entry.enum}, botocore {enum}")
        elif set(entry.enum) != set(enum):
            found.append(f"enum {entry.enum} narrower than botocore's {enum}")
    pattern = meta.get("pattern")
    if not looser and pattern != entry.pattern:
        if pattern and UNICODE_CLASS in pattern and entry.pattern is None:
            pass  # not expressible with Python's re
        elif pattern and pattern not in (".*", "[\\S\\s]*") and entry.pattern is None:
            found.append(f"LOOSER no pattern, botocore {pattern}")
        elif pattern not in (".*", "[\\S\\s]*") or entry.pattern is not None:
            found.append(f"pattern {entry.pattern}, botocore {pattern}")
    lo, hi = meta.get("min"), meta.get("max")
    if entry.enum:
        pass  # the values bound the length
    elif entry.kind in ("int", "float"):
        found += bounds("value", entry.minimum, entry.maximum, lo, hi)
    elif entry.kind in ("str", "list", "map"):
        # A length of at least 0 says nothing; an entry may require one character where the
        # pattern already does.
        lo = None if lo == 0 else lo
        if lo is None and entry.min_length == 1 and pattern and not re.fullmatch(pattern, ""):
            lo = 1
        found += bounds("length", entry.min_length, entry.max_length, lo, hi)
    if entry.path.endswith(("[]", "*")):
        pass  # an entry of a list or map: the list or map is required or not
    elif required_in_model(operation, entry.path) and not entry.required:
        found.append("LOOSER optional, botocore requires it")
    elif entry.required and not required_in_model(operation, entry.path):
        found.append("required, botocore optional")
    return found


def bounds(what: str, low, high, model_low, model_high) -> list[str]:
    found = []
    if model_low is not None and (low is None or low < model_low):
        found.append(f"LOOSER {what} minimum {low}, botocore {model_low}")
    elif low is not None and low != model_low:
        found.append(f"{what} minimum {low}, botocore {model_low}")
    if model_high is not None and (high is None or high > model_high):
        found.append(f"LOOSER {what} maximum {high}, botocore {model_high}")
    elif high is not None and high != model_high:
        found.append(f"{what} maximum {high}, botocore {model_high}")
    return found


def entries():
    for spec in SPECS:
        for entry in spec.fields:
            yield pytest.param(spec, entry, id=f"{spec.operation}:{entry.path}")


@pytest.mark.parametrize(("spec", "entry"), list(entries()))
def test_each_entry_agrees_with_botocore_or_says_why_it_is_stricter(spec: RequestSpec, entry: Field):
    found = differences(spec.operation, entry)
    assert not [f for f in found if f.startswith("LOOSER")], found
    if entry.stricter:
        # What a check adds, the model cannot show.
        assert found or entry.check, f"{entry.path} says it is stricter ({entry.stricter}) but agrees"
    else:
        assert found == [], f"{entry.path} is stricter than botocore without saying why: {found}"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.operation)
def test_each_table_describes_every_member_sagemaker_requires(spec: RequestSpec):
    shape = service_model().operation_model(spec.operation).input_shape
    assert set(shape.required_members) <= set(spec.by_path), spec.operation


def test_the_checker_finds_a_looser_entry():
    loose = Field("TransformResources.InstanceCount", "instance_count", "int", required=True, minimum=0)
    assert differences("CreateTransformJob", loose) == ["LOOSER value minimum 0, botocore 1"]
    wrong = Field("TransformInput.SplitType", "split_type", "str", enum=("None", "Lines"))
    assert differences("CreateTransformJob", wrong)[0].startswith("LOOSER enum")
    assert differences("CreateModel", Field("Nope")) == [
        "LOOSER Nope: botocore's CreateModel has no such member"
    ]
