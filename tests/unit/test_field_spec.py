"""The request-field table mechanism on a small made-up request: parameters, building, rules, messages."""

from __future__ import annotations

import inspect

import pytest

from airflow_autopilot.core.fields import Field, RequestSpec, RequestTables, problem
from airflow_autopilot.core.fields.common import JOB_NAME, ROLE_ARN, S3_URI, tag_fields
from airflow_autopilot.exceptions import AutopilotValidationError


def both_or_neither(request):
    if ("Mode" in request) != ("Size" in request):
        return [problem("Mode and Size", "give both or neither", about=("Mode", "Config.Size"))]
    return []


SPEC = RequestSpec(
    operation="CreateThing",
    fields=(
        JOB_NAME.at("ThingName", parameter="thing_name", doc="the name."),
        S3_URI.at("Channels[].S3Uri", parameter="s3_input_uri", doc="the input.", required=True),
        Field(
            "Channels",
            "channels",
            "list",
            "all channels.",
            required=True,
            min_length=1,
            max_length=2,
            items="channels",
        ),
        Field("Config.Size", "size", "int", "how many.", minimum=1, maximum=10),
        Field("Config.Fraction", "fraction", "float", "a share.", minimum=0, maximum=1, exclusive=True),
        Field("Config.Flag", "flag", "bool", "a switch."),
        Field("Mode", "mode", "str", "a mode.", enum=("A", "B")),
        Field("Map.*.Count", "count", "int", "per entry.", minimum=1),
        Field("Map", "map_config", "map", "the map."),
        ROLE_ARN,
        *tag_fields(),
    ),
    rules=(both_or_neither,),
    assembled_by={"Channels": "channels"},
    subject="thing request",
)
ROLE = "arn:aws:iam::123456789012:role/Role"


def test_parameters_are_the_table_s_in_order_with_extras_last():
    assert SPEC.parameters[:4] == ("thing_name", "s3_input_uri", "channels", "size")
    assert SPEC.parameters[-1] == "extras"
    tables = RequestTables(SPEC)
    assert tables.parameters == SPEC.parameters
    assert tables.renderers["channels"] == "json" and "size" not in tables.renderers
    assert ":param size: how many.\n" in tables.param_docs()
    signature = tables.signature()
    assert list(signature.parameters)[0] == "self" and list(signature.parameters)[-1] == "kwargs"
    assert signature.parameters["size"].default is None


def test_build_sets_paths_coerces_rendered_strings_and_merges_extras_last():
    request, errors = SPEC.build(
        {
            "thing_name": "t",
            "size": "3",
            "fraction": "0.25",
            "flag": "true",
            "mode": None,
            "map_config": {"X": {}},
            "count": "2",
            "extras": {"Config": {"Other": 1}, "New": 2},
        }
    )
    assert errors == []
    assert request == {
        "ThingName": "t",
        "Config": {"Size": 3, "Fraction": 0.25, "Flag": True, "Other": 1},
        "Map": {"X": {"Count": 2}},
        "New": 2,
    }


def test_a_wildcard_parameter_needs_exactly_one_entry_to_go_into():
    _, errors = SPEC.build({"map_config": {"X": {}, "Y": {}}, "count": 2})
    assert errors == ["count: needs exactly one entry in Map to go into (found 2)"]


def test_every_problem_names_the_field_the_rule_and_the_parameter():
    request = {
        "ThingName": "bad_name",
        "Channels": [{"S3Uri": "ftp://x"}, {}],
        "Config": {"Size": 11, "Fraction": 1, "Flag": "yes"},
        "Mode": "C",
        "Map": {"X": {"Count": 0}},
        "RoleArn": "arn:aws:iam::1:role/x-is-long-enough",
        "Tags": [{"Key": "k"}],
    }
    with pytest.raises(AutopilotValidationError) as raised:
        SPEC.check(request)
    assert raised.value.errors == [
        "ThingName: 'bad_name' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31} (letters, digits and hyphens; "
        "starts and ends with a letter or digit) (operator parameter: thing_name)",
        "Channels[0].S3Uri: 'ftp://x' must match (https|s3)://([^/]+)/?(.*) (for example s3://bucket/prefix) "
        "(operator parameter: s3_input_uri)",
        "Channels[1].S3Uri: required, an S3 URI such as s3://bucket/prefix (operator parameter: s3_input_uri)",
        "Config.Size: 11 must be an integer from 1 to 10 (operator parameter: size)",
        "Config.Fraction: 1 must be greater than 0 and less than 1 (operator parameter: fraction)",
        "Config.Flag: 'yes' must be true or false (operator parameter: flag)",
        "Mode: 'C' must be one of ['A', 'B'] (operator parameter: mode)",
        "Map.X.Count: 0 must be a positive integer (operator parameter: count)",
        "RoleArn: 'arn:aws:iam::1:role/x-is-long-enough' must be an IAM role ARN such as "
        "arn:aws:iam::123456789012:role/MyRole (operator parameter: role_arn)",
        "Tags[0].Value: required, a string of at most 256 characters (operator parameter: tags)",
        "Mode and Size: give both or neither (operator parameter: mode, size)",
    ]
    assert raised.value.subject == "thing request"


def test_an_assembled_parameter_is_named_for_everything_under_its_path():
    problems = SPEC.problems({"Channels": [{"S3Uri": "ftp://x"}], "ThingName": "t", "RoleArn": ROLE})
    assert SPEC.operator_messages(problems, frozenset({"channels"}))[0].endswith(
        "(operator parameter: channels)"
    )


def test_unknown_top_level_fields_pass_through_for_the_caller_to_log():
    request = {"ThingName": "t", "Channels": [{"S3Uri": "s3://b/k"}], "RoleArn": ROLE, "Brand": "new"}
    assert SPEC.check(request) == ["Brand"]


def test_the_server_wording_is_sagemaker_s_from_the_same_rules():
    message = SPEC.server_message(
        {"ThingName": "x" * 40, "Channels": [{"S3Uri": "s3://b/k"}], "RoleArn": ROLE}
    )
    assert message == (
        f"1 validation error detected: Value '{'x' * 40}' at 'thingName' failed to satisfy constraint: "
        "Member must have length between 1 and 32"
    )
    message = SPEC.server_message(
        {"ThingName": "t", "Channels": [{"S3Uri": "s3://b/k"}], "RoleArn": ROLE, "Mode": "C"}
    )
    assert (
        "Value 'C' at 'mode' failed to satisfy constraint: Member must satisfy enum value set: [A, B]"
        in message
    )
    assert "Mode and Size: give both or neither" in message
    missing = SPEC.server_message({"ThingName": "t", "RoleArn": ROLE})
    assert "Value null at 'channels' failed to satisfy constraint: Member must not be null" in missing
    assert (
        SPEC.server_message({"ThingName": "t", "Channels": [{"S3Uri": "s3://b/k"}], "RoleArn": ROLE}) is None
    )


def test_a_name_that_is_an_empty_rendering_is_named_as_such():
    (message,) = SPEC.errors({"ThingName": "None", "Channels": [{"S3Uri": "s3://b/k"}], "RoleArn": ROLE})
    assert message.startswith("ThingName: 'None' is what a template renders for an empty value")


def test_an_assembly_returning_nothing_leaves_extras_to_be_merged():
    def add_flag(params, request, errors):
        request["Flagged"] = True

    spec = SPEC.extended()
    spec.assemble = add_flag
    request, errors = spec.build({"thing_name": "t", "extras": {"New": 1}})
    assert (request, errors) == ({"ThingName": "t", "Flagged": True, "New": 1}, [])


# --- one request-tables mechanism: an operator's tables, extended copies, one-entry lists ---------
OTHER = RequestSpec(
    "CreateOther",
    (
        JOB_NAME.at("OtherName", parameter="thing_name", doc="named twice: the first table's doc wins."),
        Field("Count", "count", "int", "a count.", required=True, minimum=1),
    ),
    extras=None,
)


def test_an_operator_s_tables_derive_each_parameter_once_with_defaults_and_required_arguments():
    both = RequestTables(SPEC, OTHER)
    assert both.parameters.count("thing_name") == 1 and "count" in both.parameters
    assert ":param thing_name: the name.\n" in both.param_docs() and "named twice" not in both.param_docs()
    tables = RequestTables(OTHER, defaults={"count": 2})
    signature = tables.signature()
    assert signature.parameters["count"].default == 2
    assert signature.parameters["thing_name"].default is inspect.Parameter.empty  # required, no default
    with pytest.raises(TypeError, match="'thing_name'"):
        tables.take({"count": 3})
    kwargs = {"thing_name": "t", "task_id": "x"}
    assert tables.take(kwargs) == {"thing_name": "t", "count": 2} and kwargs == {"task_id": "x"}
    optional = RequestTables(OTHER, required_arguments=False)
    assert optional.signature().parameters["thing_name"].default is None
    assert optional.take({}) == {"thing_name": None, "count": None}


def test_an_extended_copy_is_the_operator_s_table_of_that_request_only():
    extra = Field("Label", "label", "str", "a label.", max_length=3)
    tables = RequestTables(SPEC, OTHER).extended(extra, operation="CreateOther")
    assert tables.get(OTHER) is not OTHER and tables.get(OTHER).by_path["Label"] == extra
    assert tables.get(SPEC) is SPEC and "Label" not in OTHER.by_path
    assert "label" in tables.parameters and tables.get(OTHER).errors({"Count": 1, "Label": "long"}) == [
        "OtherName: required",
        "Label: 'long' is 4 characters; at most 3 allowed",
    ]
    assert RequestTables().get(OTHER) is OTHER  # no tables of its own: the module-level one


def test_list_members_with_parameters_go_into_the_one_entry_the_table_starts():
    spec = RequestSpec(
        "CreatePool",
        (
            Field("Members", kind="list", required=True, min_length=1),
            Field("Members[].Size", "size", "int", "a size.", minimum=1),
            Field("Members[].Parts[].Name", "part_name", "str", "not one entry's: left out."),
        ),
        one_entry={"Members": {"Weight": 1.0}},
        extras=None,
    )
    assert spec.build({"size": "4", "part_name": "p"}) == ({"Members": [{"Weight": 1.0, "Size": 4}]}, [])
    assert spec.build({}) == ({"Members": [{"Weight": 1.0}]}, [])
    assert spec.extended().build({"size": 2})[0] == {"Members": [{"Weight": 1.0, "Size": 2}]}
