"""The request-field table mechanism: a request described once as :class:`Field` entries, from which
the operator parameters, request building, local validation and the emulator's messages derive."""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, NamedTuple

#: A field's type, as botocore's model names it (``string`` is ``str`` here, ``double``/``float`` ``float``).
Kind = Literal["str", "int", "float", "bool", "list", "map", "structure", "any"]

#: How an empty value reads once a template rendered it: Python's ``None``, JSON's ``null``.
EMPTY_RENDERINGS = frozenset({"none", "null"})

_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "map": "a mapping",
    "structure": "a mapping",
}
_SERVER_KIND = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "list": "a list",
    "map": "a map",
    "structure": "a structure",
}
_ANNOTATIONS = {
    "str": "str | None",
    "int": "int | str | None",
    "float": "float | str | None",
    "bool": "bool | str | None",
    "list": "list[Any] | None",
    "map": "dict[str, Any] | None",
    "structure": "dict[str, Any] | None",
    "any": "Any",
}


#: botocore's type names -> a field's kind (the emulator's shape check and the model test use it).
BOTOCORE_KINDS: dict[str, Kind] = {
    "string": "str",
    "blob": "str",
    "integer": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "boolean": "bool",
    "list": "list",
    "map": "map",
    "structure": "structure",
}


def is_kind(kind: Kind, value: Any) -> bool:
    """``value`` has the type ``kind`` names (a bool is not a number; any mapping is a structure).

    :param kind: a field's kind.
    :param value: the value.
    """
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind in ("map", "structure"):
        return isinstance(value, Mapping)
    return True


def kind_constraint(kind: Kind, value: Any) -> str | None:
    """SageMaker's constraint for a value of the wrong type (``Member must be a string``), or ``None``.

    :param kind: the member's kind.
    :param value: the value.
    """
    return None if is_kind(kind, value) else f"Member must be {_SERVER_KIND[kind]}"


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for messages.

    :param value: the value.
    :param limit: the longest text returned.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _server_bounds(what: str, lo: float | None, hi: float | None) -> str:
    """SageMaker's constraint for a ``value`` or ``length`` outside ``lo``..``hi`` (inclusive)."""
    if lo is not None and hi is not None:
        return f"Member must have {what} between {_bound(lo)} and {_bound(hi)}"
    if lo is not None:
        return f"Member must have {what} greater than or equal to {_bound(lo)}"
    return f"Member must have {what} less than or equal to {_bound(hi)}"  # type: ignore[arg-type]


# Entries are NamedTuples, not dataclasses: DAG files import the tables (through the operators),
# and a tuple class costs a fraction of a dataclass's generated methods at import.
class Field(NamedTuple):
    """
    One request field: where it goes, the operator parameter behind it, its type and SageMaker's rules.

    :ivar path: the request path, ``"A.B.C"``; ``"A[].B"`` for a member of each entry of list ``A``;
        ``"A.*.B"`` for member ``B`` of whichever entry of map ``A`` is given.
    :ivar parameter: the operator parameter that sets it, or ``None`` (reachable through ``extras``).
    :ivar kind: its type (botocore's, simplified); Jinja-rendered strings are coerced to it.
    :ivar doc: the operator parameter's one-line description (its ``:param:`` docstring).
    :ivar required: must be given whenever its parent is.
    :ivar hint: what a missing value should be, for ``required`` messages ("an S3 URI such as ...").
    :ivar pattern: the regular expression the value must match in full (botocore's, where it has one).
    :ivar rule: the wording that replaces ``must match <pattern>`` (``"must be an IAM role ARN ..."``).
    :ivar pattern_hint: said after the pattern, in brackets.
    :ivar min_length: fewest characters (strings) or entries (lists, maps).
    :ivar max_length: most characters or entries.
    :ivar minimum: smallest number.
    :ivar maximum: largest number.
    :ivar exclusive: ``minimum`` and ``maximum`` are excluded (``0 < x < 1``).
    :ivar enum: the allowed values, SageMaker's default first where it has one.
    :ivar items: what a list's entries are called in count messages ("channels", "tags").
    :ivar build: turns the parameter's value into the field's (``["xgboost"]`` -> ``[{...}]``).
    :ivar check: more rules of this one field: ``(value, path) -> [rule text]``, run once the
        type is right and before the generic rules (which run only when it finds nothing).
    :ivar wire: SageMaker's member path in server messages, when not the camelCase of the path.
    :ivar stricter: why this entry is deliberately stricter than botocore's model (checked by tests).
    :ivar annotation: the parameter's type hint, when not the one ``kind`` implies.
    :ivar named_as: how messages name the parameter, when more than its name helps
        (``"tags / extras['Tags']"``).
    :ivar item_parameters: for a member of list entries, the parameter behind each entry by index
        (``("s3_input_uri", "validation_s3_input_uri")``), when they differ.
    """

    path: str
    parameter: str | None = None
    kind: Kind = "str"
    doc: str = ""
    required: bool = False
    hint: str = ""
    pattern: str | None = None
    rule: str | None = None
    pattern_hint: str = ""
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    enum: tuple[str, ...] = ()
    items: str = "entries"
    build: Callable[[Any], Any] | None = None
    check: Callable[[Any, str], list[str]] | None = None
    wire: str | None = None
    stricter: str = ""
    annotation: str | None = None
    named_as: str | None = None
    item_parameters: tuple[str, ...] = ()

    def at(self, path: str, **changes: Any) -> Field:
        """This field's rules under another path (a shared description reused by another request).

        :param path: the new request path.
        :param changes: other attributes to change (``parameter``, ``doc`` ...).
        """
        return self._replace(path=path, **changes)

    @property
    def segments(self) -> tuple[str, ...]:
        """The path's members, ``"A[]"`` and ``"*"`` included as written."""
        return tuple(self.path.split("."))

    @property
    def generic_path(self) -> str:
        """The path with list markers and wildcards as written (the key for look-ups)."""
        return self.path

    @property
    def required_text(self) -> str:
        """What a missing value's message says: ``required, <hint>`` (``required when ...``)."""
        if not self.hint:
            return "required"
        return f"required {self.hint}" if self.hint.startswith("when ") else f"required, {self.hint}"

    @property
    def type_hint(self) -> str:
        """The operator parameter's type hint."""
        return self.annotation or _ANNOTATIONS[self.kind]

    # --- rules ------------------------------------------------------------------------------------
    def errors(self, value: Any, path: str | None = None) -> list[str]:
        """The messages for one value of this field alone (``None``: not given).

        :param value: the value.
        :param path: the name to use in messages (default: the table path).
        """
        label = path or self.path
        if value is None:
            return [f"{label}: {self.required_text}"] if self.required else []
        return [p.message for p in self.problems(value, label)]

    def problems(self, value: Any, path: str) -> list[Problem]:
        """The rules ``value`` (given, not ``None``) breaks at concrete ``path``.

        :param value: the value in the request.
        :param path: where it is (``"InputDataConfig[1].ChannelType"``).
        """
        kind_problem = self._kind_problem(value)
        if kind_problem:
            return [Problem(path, kind_problem, self, value, kind_constraint(self.kind, value))]
        if self.check is not None:
            texts = self.check(value, path)
            if texts:
                return [Problem(path, text, self, value) for text in texts]
        for text, constraint in self._rule_problems(value):
            return [Problem(path, text, self, value, constraint)]
        return []

    def _kind_problem(self, value: Any) -> str | None:
        kind = self.kind
        ok = is_kind(kind, value)
        if ok:
            return None
        if kind in ("int", "float") and (self.minimum is not None or self.maximum is not None):
            return f"{short(value)} must be {self._range_text()}"
        if kind == "bool":
            return f"{short(value)} must be true or false"
        if kind == "str":
            return f"expected a string, got {type(value).__name__} {short(value)}"
        return f"must be {_KIND_NAMES[kind]}" + (f" of {self.items}" if kind == "list" else "")

    def _range_text(self) -> str:
        noun = "an integer" if self.kind == "int" else "a number"
        lo, hi = self.minimum, self.maximum
        if self.exclusive and lo is not None and hi is not None:
            return f"greater than {_bound(lo)} and less than {_bound(hi)}"
        if lo is not None and hi is not None:
            return f"{noun} from {_bound(lo)} to {_bound(hi)}"
        if lo is not None:
            if lo == 1 and self.kind == "int":
                return "a positive integer"
            return f"{noun} of at least {_bound(lo)}"
        return f"{noun} of at most {_bound(hi)}"  # type: ignore[arg-type]

    def _server_range(self) -> str:
        lo, hi = self.minimum, self.maximum
        if self.exclusive and lo is not None and hi is not None:
            return f"Member must have value greater than {_bound(lo)} and less than {_bound(hi)}"
        return _server_bounds("value", lo, hi)

    def _server_length(self) -> str:
        return _server_bounds("length", self.min_length, self.max_length)

    def _rule_problems(self, value: Any) -> Iterator[tuple[str, str]]:
        if self.enum and value not in self.enum:
            yield (
                f"{short(value)} must be one of {sorted(self.enum)}",
                f"Member must satisfy enum value set: [{', '.join(self.enum)}]",
            )
        if isinstance(value, (str, list, Mapping)):
            size = len(value)
            lo, hi = self.min_length, self.max_length
            if isinstance(value, str):
                if hi is not None and size > hi:
                    yield f"{short(value)} is {size} characters; at most {hi} allowed", self._server_length()
                elif lo is not None and size < lo:
                    what = (
                        f"required, {self.hint or 'a non-empty string'}"
                        if not size
                        else f"{short(value)} is {size} characters; at least {lo} required"
                    )
                    yield what, self._server_length()
            else:
                if hi is not None and size > hi:
                    yield f"{size} {self.items} given; at most {hi} allowed", self._server_length()
                elif lo is not None and size < lo:
                    what = (
                        self.required_text
                        if not size and self.required
                        else f"{size} {self.items} given; at least {lo} required"
                    )
                    yield what, self._server_length()
        if (
            isinstance(value, str)
            and self.pattern is not None
            and not compiled(self.pattern).fullmatch(value)
        ):
            text = self.rule or f"must match {self.pattern}" + (
                f" ({self.pattern_hint})" if self.pattern_hint else ""
            )
            yield (
                f"{short(value)} {text}",
                f"Member must satisfy regular expression pattern: {self.pattern}",
            )
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = self.minimum, self.maximum
            if not math.isfinite(value):
                yield f"{short(value)} must be {self._range_text()}", self._server_range()
            elif self.exclusive and (
                (low is not None and value <= low) or (high is not None and value >= high)
            ):
                yield f"{short(value)} must be {self._range_text()}", self._server_range()
            elif not self.exclusive and (
                (low is not None and value < low) or (high is not None and value > high)
            ):
                yield f"{short(value)} must be {self._range_text()}", self._server_range()

    # --- building ---------------------------------------------------------------------------------
    def coerce(self, value: Any) -> Any:
        """A Jinja-rendered string turned back into the field's type (``"10"`` -> 10); else unchanged.

        :param value: the parameter's value.
        """
        if not isinstance(value, str):
            return value
        text = value.strip()
        if self.kind == "int" and re.fullmatch(r"-?\d+", text):
            return int(text)
        if self.kind == "float":
            try:
                return float(text)
            except ValueError:
                return value
        if self.kind == "bool" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        return value


@functools.cache
def compiled(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled once (tables hold patterns as text, so importing them compiles nothing).

    :param pattern: a regular expression.
    """
    return re.compile(pattern)


class Problem(NamedTuple):
    """
    One broken rule: where, what (our wording) and SageMaker's constraint text (its wording).

    :ivar path: the concrete request path (``"InputDataConfig[0].ChannelType"``).
    :ivar text: the rule broken, in our words (the message is ``"<path>: <text>"``).
    :ivar field: the table entry, when the rule is one field's.
    :ivar value: the value found.
    :ivar constraint: SageMaker's ``Member must ...`` text; ``None``: the server says ``server``
        or our message.
    :ivar server: SageMaker's whole message for a rule that is not one member's constraint.
    :ivar about: the request paths whose operator parameters the message should name, when not
        ``path`` (a rule across fields).
    """

    path: str
    text: str
    field: Field | None = None
    value: Any = None
    constraint: str | None = None
    server: str | None = None
    about: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        """``"<path>: <text>"``: names the field and the rule."""
        return f"{self.path}: {self.text}"

    @property
    def server_message(self) -> str:
        """The text of SageMaker's ValidationException for this problem alone."""
        if self.constraint is not None and self.field is not None:
            shown = "null" if self.value is None else f"'{self.value}'"
            where = self.field.wire or wire_path(self.path)
            return f"Value {shown} at '{where}' failed to satisfy constraint: {self.constraint}"
        return self.server or self.message


def problem(path: str, text: str, *, server: str | None = None, about: Sequence[str] = ()) -> Problem:
    """A cross-field rule's problem (see :class:`Problem`).

    :param path: the request path the message starts with.
    :param text: the rule broken.
    :param server: SageMaker's own wording, when the emulator should answer differently.
    :param about: the paths whose parameters the message names, when not ``path``.
    """
    return Problem(path, text, server=server, about=tuple(about))


# --- paths ----------------------------------------------------------------------------------------
_MISSING = object()
_INDEX = re.compile(r"\[\d+\]")


def wire_path(path: str) -> str:
    """SageMaker's name of a member in its messages: ``InputDataConfig[0].ChannelType`` ->
    ``inputDataConfig.member.channelType``.

    :param path: a concrete request path.
    """
    camel = ".".join(part[:1].lower() + part[1:] for part in path.split("."))
    return _INDEX.sub(".member", camel)


def generic(path: str) -> str:
    """A concrete path's table form: ``InputDataConfig[1].ChannelType`` -> ``InputDataConfig[].ChannelType``.

    :param path: a concrete path.
    """
    return _INDEX.sub("[]", path)


def _walk(node: Any, segments: Sequence[str], prefix: str, table: str = "") -> Iterator[tuple[str, Any, str]]:
    """
    (concrete path, value or ``_MISSING``, gap) for each place ``segments`` name in ``node``; the
    gap is the table path of the first member not given on the way (``""`` when the parent is given).
    """
    head, rest = segments[0], segments[1:]
    if head == "*":
        keys = list(node) if isinstance(node, Mapping) else []
        for key in keys:
            sub = f"{prefix}.{key}" if prefix else str(key)
            if rest:
                yield from _walk(node[key], rest, sub, _join(table, "*"))
            else:
                yield sub, node[key], ""
        return
    name = head.removesuffix("[]")
    path = f"{prefix}.{name}" if prefix else name
    here = _join(table, head)
    value = node.get(name, _MISSING) if isinstance(node, Mapping) else _MISSING
    if value is None:
        value = _MISSING
    if head.endswith("[]"):
        if not isinstance(value, list):
            return  # the list's own entry reports it missing or mistyped
        for i, item in enumerate(value):
            if rest:
                yield from _walk(item, rest, f"{path}[{i}]", here)
            else:
                yield f"{path}[{i}]", item, ""
        return
    if not rest:
        yield path, value, "" if isinstance(node, Mapping) else table
    elif value is not _MISSING:
        yield from _walk(value, rest, path, here)
    elif not any(s.endswith("[]") or s == "*" for s in rest):
        yield f"{path}.{'.'.join(rest)}", _MISSING, here


def _join(table: str, segment: str) -> str:
    return f"{table}.{segment}" if table else segment


def values_at(request: Mapping[str, Any], path: str) -> list[tuple[str, Any]]:
    """The (concrete path, value) pairs ``path`` names in ``request``; ``None`` for a member not given.

    :param request: the request.
    :param path: a table path.
    """
    return [(p, None if v is _MISSING else v) for p, v, _ in _walk(request, path.split("."), "")]


def set_path(request: dict[str, Any], path: str, value: Any) -> str | None:
    """Set ``value`` at ``path`` (creating structures); a ``*`` goes into the one member given.

    :param request: the request being built.
    :param path: a table path without list markers.
    :param value: the value.
    :return: why it could not be set, or ``None``.
    """
    node = request
    segments = path.split(".")
    for i, segment in enumerate(segments[:-1]):
        if segment == "*":
            given = [k for k, v in node.items() if v is not None] if isinstance(node, Mapping) else []
            if len(given) != 1 or not isinstance(node[given[0]], Mapping):
                where = ".".join(segments[:i]) or "the request"
                return f"needs exactly one entry in {where} to go into (found {len(given)})"
            node[given[0]] = dict(node[given[0]])
            node = node[given[0]]
            continue
        child = node.get(segment)
        if child is None:
            child = node[segment] = {}
        elif isinstance(child, Mapping):
            child = node[segment] = dict(child)
        else:
            return f"{'.'.join(segments[: i + 1])} is not a mapping"
        node = child
    node[segments[-1]] = value
    return None


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """
    ``base`` updated with ``extra``; nested mappings merge key by key, anything else is replaced.

    :param base: the request built from parameters.
    :param extra: the ``extras`` parameter.
    """
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """``mapping`` without its ``None`` values.

    :param mapping: a mapping.
    """
    return {k: v for k, v in mapping.items() if v is not None}


#: A rule across fields: the request -> its problems.
Rule = Callable[[Mapping[str, Any]], list[Problem]]
#: The hand-written part of building: (parameters, request so far, errors), editing the request;
#: it returns ``None``, or the ``extras`` left to merge when it consumed part of them (``extras["Tags"]``).
Assemble = Callable[[Mapping[str, Any], dict[str, Any], list[str]], Any]


class Parameter(NamedTuple):
    """
    An operator parameter the table derives: its name, type hint, docstring line and renderer.

    :ivar name: the parameter.
    :ivar type_hint: its annotation.
    :ivar doc: its ``:param:`` description.
    :ivar renderer: the Airflow template renderer (``"json"`` for structures and lists).
    """

    name: str
    type_hint: str
    doc: str
    renderer: str | None


class RequestSpec:
    """
    One SageMaker request described as data: its fields, the rules across them, and how operator
    parameters that are not one field each (channels from URIs, tags) are assembled.

    :param operation: the API operation (``"CreateAutoMLJobV2"``).
    :param fields: the table, one :class:`Field` per request field (nested ones included).
    :param rules: cross-field rules, each ``request -> [Problem]``.
    :param assemble: the hand-written building step, run after the table's fields are set and
        before ``extras`` is merged.
    :param extra_parameters: operator parameters no field describes (``(name, hint, doc)``), in
        order; ``extras`` is added last by itself.
    :param assembled_by: request path prefix -> the parameter that, when given, supplies all of it
        (``{"InputDataConfig": "input_data_config"}``): messages under it name that parameter.
    :param subject: what an invalid request is called in errors (``Invalid <subject>``).
    :param extras: the parameter merged into the request last (``None``: no such parameter).
    :param assembled: parameters :attr:`assemble` places itself (the generic step skips them).
    :param one_entry: list path -> the entry the request's one item of that list starts from
        (``{"ProductionVariants": {"VariantName": "AllTraffic"}}``): the list's members that have a
        parameter are set in that one entry (a list member has no path of its own to be set at).
    """

    def __init__(
        self,
        operation: str,
        fields: tuple[Field, ...],
        rules: tuple[Rule, ...] = (),
        assemble: Assemble | None = None,
        extra_parameters: tuple[tuple[str, str, str], ...] = (),
        assembled_by: Mapping[str, str] | None = None,
        subject: str = "request",
        extras: str | None = "extras",
        assembled: frozenset[str] = frozenset(),
        one_entry: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.operation = operation
        self.fields = tuple(fields)
        self.rules = tuple(rules)
        self.assemble = assemble
        self.extra_parameters = tuple(extra_parameters)
        self.assembled_by: Mapping[str, str] = dict(assembled_by or {})
        self.subject = subject
        self.extras = extras
        self.assembled = frozenset(assembled)
        self.one_entry: Mapping[str, Mapping[str, Any]] = dict(one_entry or {})

    def extended(self, *fields: Field, rules: tuple[Rule, ...] = ()) -> RequestSpec:
        """This table with more entries (and rules): a new request version, or a test's copy.

        :param fields: the entries to add.
        :param rules: the cross-field rules to add.
        """
        return RequestSpec(
            self.operation,
            (*self.fields, *fields),
            (*self.rules, *rules),
            self.assemble,
            self.extra_parameters,
            self.assembled_by,
            self.subject,
            self.extras,
            self.assembled,
            self.one_entry,
        )

    def __repr__(self) -> str:
        return f"RequestSpec({self.operation!r}, {len(self.fields)} fields, {len(self.rules)} rules)"

    # --- derived: parameters ----------------------------------------------------------------------
    @functools.cached_property
    def parameter_table(self) -> tuple[Parameter, ...]:
        """Each operator parameter once, in table order; ``extras`` last."""
        seen: dict[str, Parameter] = {}
        for entry in self.fields:
            name = entry.parameter
            if name is None:
                continue
            renderer = "json" if entry.kind in ("list", "map", "structure") else None
            for other in (name, *entry.item_parameters):
                doc = entry.doc if other == name else ""
                if other in seen:
                    if not seen[other].doc and doc:
                        seen[other] = seen[other]._replace(doc=doc)
                    continue
                seen[other] = Parameter(other, entry.type_hint, doc, renderer)
        for name, hint, doc in self.extra_parameters:
            seen.setdefault(
                name, Parameter(name, hint, doc, "json" if "dict" in hint or "list" in hint else None)
            )
        if self.extras:
            seen[self.extras] = Parameter(
                self.extras,
                "dict[str, Any] | None",
                f"{self.operation} fields merged last, nested dicts key by key (for fields without a "
                "parameter, or newer than this package).",
                "json",
            )
        return tuple(seen.values())

    @property
    def parameters(self) -> tuple[str, ...]:
        """The operator's request parameters (its template fields), in table order."""
        return tuple(p.name for p in self.parameter_table)

    # --- derived: look-ups ------------------------------------------------------------------------
    @functools.cached_property
    def by_path(self) -> dict[str, Field]:
        """Table path -> entry."""
        return {entry.path: entry for entry in self.fields}

    @functools.cached_property
    def known_keys(self) -> frozenset[str]:
        """The request's top-level members the table knows."""
        return frozenset(entry.segments[0].removesuffix("[]") for entry in self.fields)

    def parameter_for(self, path: str, given: frozenset[str] = frozenset()) -> str | None:
        """The operator parameter(s) behind a concrete request path (the longest table path that is a
        prefix of it), or ``None``.

        :param path: a concrete or table path.
        :param given: the operator parameters that were given (``assembled_by`` applies to them).
        """
        concrete, path = path, generic(path)
        for prefix, parameter in self.assembled_by.items():
            if parameter in given and (path == prefix or path.startswith((prefix + ".", prefix + "["))):
                return parameter
        best: Field | None = None
        for entry in self.fields:
            if entry.parameter is None:
                continue
            if _matches(entry.path, path) and (best is None or len(entry.path) > len(best.path)):
                best = entry
        if best is None:
            # A structure whose members have parameters (``AutoMLJobObjective`` -> ``objective_metric``).
            below = [
                e.named_as or e.parameter
                for e in self.fields
                if e.parameter and _matches(path, generic(e.path)) and e.path != path
            ]
            return ", ".join(dict.fromkeys(n for n in below if n)) or None
        index = _INDEX.search(concrete)
        if best.item_parameters and index is not None:
            i = int(index.group(0)[1:-1])
            if i < len(best.item_parameters):
                return best.item_parameters[i]
        return best.named_as or best.parameter

    # --- building ---------------------------------------------------------------------------------
    def build(self, params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """
        The request from operator parameters: each field's parameter set at its path (coerced,
        ``None`` left out), then :attr:`assemble`, then ``extras`` merged.

        :param params: parameter name -> value (rendered).
        :return: the request and the problems found while building it.
        """
        request: dict[str, Any] = {}
        errors: list[str] = []
        items = {name: dict(start) for name, start in self.one_entry.items()}
        # Wildcard paths go into what the others built (``Map.*.Count`` into the given ``Map``).
        for entry in sorted(self.fields, key=lambda f: "*" in f.segments):
            if entry.parameter is None or entry.parameter in self.assembled:
                continue
            target, path = request, entry.path
            if "[]" in path:
                name, _, path = path.partition("[].")
                if name not in items or not path or "[]" in path:
                    continue
                target = items[name]
            value = params.get(entry.parameter)
            if value is None:
                continue
            value = entry.coerce(value)
            if entry.build is not None:
                try:
                    value = entry.build(value)
                except (TypeError, ValueError) as err:
                    errors.append(f"{entry.parameter}: {err}")
                    continue
            if value is None:
                continue
            before = dict(target)  # set_path copies what it changes below the top level
            why = set_path(target, path, value)
            if why:
                target.clear()
                target.update(before)
                errors.append(f"{entry.parameter}: {why}")
        for name, item in items.items():
            request[name] = [item]
        extras = params.get(self.extras) if self.extras else None
        if self.assemble is not None:
            left = self.assemble(params, request, errors)
            if left is not None:  # it consumed part of extras (such as extras["Tags"])
                extras = left
        if extras is not None:
            if isinstance(extras, Mapping):
                request = deep_merge(request, extras)
            else:
                errors.append(f"{self.extras}: must be a dict of {self.operation} fields")
        return request, errors

    # --- validation -------------------------------------------------------------------------------
    def problems(self, request: Mapping[str, Any]) -> list[Problem]:
        """Every rule ``request`` breaks: each field's, then the cross-field rules.

        :param request: the request.
        """
        found: list[Problem] = []
        for entry in self.fields:
            for path, value, gap in _walk(request, entry.path.split("."), ""):
                if value is _MISSING:
                    if entry.required and not self._declared_between(gap, entry):
                        text = entry.required_text
                        found.append(Problem(path, text, entry, None, "Member must not be null"))
                    continue
                found += entry.problems(value, path)
        for rule in self.rules:
            found += rule(request)
        return found

    def _declared_between(self, gap: str, entry: Field) -> bool:
        """A table entry reports the missing structure ``gap`` (or one below it) itself."""
        if not gap:
            return False
        parent = entry.path.rsplit(".", 1)[0]
        return any(
            p == gap or (p.startswith(gap + ".") and (parent == p or parent.startswith(p + ".")))
            for p in self.by_path
        )

    def errors(self, request: Mapping[str, Any]) -> list[str]:
        """Every rule ``request`` breaks, as messages naming the field and the rule.

        :param request: the request.
        """
        return [p.message for p in self.problems(request)]

    def operator_messages(
        self, problems: Sequence[Problem], given: frozenset[str] = frozenset()
    ) -> list[str]:
        """The messages with ``(operator parameter: x)`` where a parameter sets the field.

        :param problems: from :meth:`problems`.
        :param given: the operator parameters given (for :attr:`assembled_by`).
        """
        out = []
        for item in problems:
            names: list[str] = []
            for path in item.about or (item.path,):
                name = self.parameter_for(path, given)
                if name and name not in names:
                    names.append(name)
            out.append(f"{item.message} (operator parameter: {', '.join(names)})" if names else item.message)
        return out

    def check(
        self,
        request: Mapping[str, Any],
        operator_errors: Sequence[str] = (),
        given: frozenset[str] = frozenset(),
    ) -> list[str]:
        """
        Validate the request an operator built; raise one error listing every problem.

        Top-level fields the table does not know can only come from ``extras`` (fields AWS added
        later): they are passed through unchecked and returned so the caller can log them.

        :param request: the built request.
        :param operator_errors: problems found while building it.
        :param given: the operator parameters given.
        :return: the unknown top-level fields passed through.
        :raises AutopilotValidationError: naming each field, its rule and the operator parameter.
        """
        passthrough = sorted(set(request) - self.known_keys)
        known = {k: v for k, v in request.items() if k in self.known_keys}
        errors = list(operator_errors) + self.operator_messages(self.problems(known), given)
        raise_if(errors, self.subject)
        return passthrough

    def request_errors(self, request: Mapping[str, Any]) -> list[str]:
        """Every rule a request for any caller breaks, unknown top-level fields included, as messages.

        :param request: the request (the keyword arguments of the boto3 call).
        """
        return [p.message for p in self.unknown_problem(request) + self.problems(request)]

    def validate(self, request: Mapping[str, Any]) -> None:
        """Raise :class:`AutopilotValidationError` listing every broken rule; return quietly when valid.

        :param request: the request (the keyword arguments of the boto3 call).
        """
        raise_if(self.request_errors(request), self.subject)

    def unknown_problem(self, request: Mapping[str, Any]) -> list[Problem]:
        """A problem for top-level members the table does not know (for callers without ``extras``).

        :param request: the request.
        """
        unknown = sorted(set(request) - self.known_keys)
        if not unknown:
            return []
        return [
            Problem(
                str(unknown),
                f"unknown {self.operation} field(s); known: {sorted(self.known_keys)}",
            )
        ]

    def server_message(self, request: Mapping[str, Any]) -> str | None:
        """SageMaker's ValidationException message for ``request``, or ``None`` when it is valid.

        :param request: the request as the server received it.
        """
        found = self.problems(request)
        if not found:
            return None
        count = len(found)
        texts = "; ".join(p.server_message for p in found)
        return f"{count} validation error{'s' if count > 1 else ''} detected: {texts}"


class RequestTables:
    """
    The tables of the requests one operator sends, and the operator parameters they derive: their
    names (template fields), renderers, defaults, ``:param:`` docs and the ``__init__`` signature
    Airflow reads (``default_args``, ``partial``, ``expand``, missing arguments). The operator builds
    and validates each request with its own table (:meth:`get`), so a copy extended by a field
    (:meth:`extended`) works end to end, as editing the table itself does.

    :param specs: the tables (the first one's docs win for a parameter several share).
    :param defaults: the operator's defaults; a parameter not listed defaults to ``None``.
    :param required_arguments: a parameter whose field is required (and that has no default) is a
        required argument; ``False`` leaves every one optional, for validation in ``execute``.
    """

    def __init__(
        self,
        *specs: RequestSpec,
        defaults: Mapping[str, Any] | None = None,
        required_arguments: bool = True,
    ) -> None:
        self.specs = specs
        self.defaults: Mapping[str, Any] = dict(defaults or {})
        self.required_arguments = required_arguments
        table: dict[str, Parameter] = {}
        required: set[str] = set()
        for spec in specs:
            for parameter in spec.parameter_table:
                table.setdefault(parameter.name, parameter)
            if required_arguments:
                required |= {f.parameter for f in spec.fields if f.required and f.parameter is not None}
        self.table = tuple(table.values())
        self.required = frozenset(required - set(self.defaults))

    def __repr__(self) -> str:
        return f"RequestTables({', '.join(spec.operation for spec in self.specs)})"

    def get(self, spec: RequestSpec) -> RequestSpec:
        """This operator's table of the request ``spec`` describes: its extended copy, or ``spec``.

        :param spec: a request's table (the module-level one).
        """
        return next((own for own in self.specs if own.operation == spec.operation), spec)

    def extended(self, *fields: Field, operation: str | None = None) -> RequestTables:
        """These tables with ``fields`` added to one of them (a new field, or a test's copy).

        :param fields: the entries to add.
        :param operation: the request they belong to (default: the first table's).
        """
        operation = operation or self.specs[0].operation
        return RequestTables(
            *(spec.extended(*fields) if spec.operation == operation else spec for spec in self.specs),
            defaults=self.defaults,
            required_arguments=self.required_arguments,
        )

    @property
    def parameters(self) -> tuple[str, ...]:
        """The request parameters (template fields), in table order."""
        return tuple(p.name for p in self.table)

    @property
    def renderers(self) -> dict[str, str]:
        """Template field renderers: ``json`` for structured parameters."""
        return {p.name: p.renderer for p in self.table if p.renderer}

    def param_docs(self, indent: str = "    ") -> str:
        """The ``:param:`` lines of the request parameters, for an operator's docstring.

        :param indent: the docstring's indentation.
        """
        return "".join(f"{indent}:param {p.name}: {p.doc}\n" for p in self.table)

    def signature(self, init: Callable[..., None] | None = None) -> inspect.Signature:
        """``init``'s signature with the request parameters (keyword-only) before its ``**kwargs``.

        :param init: the operator's ``__init__``, taking them through ``**kwargs`` (default: one
            taking only ``self`` and ``**kwargs``).
        """
        if init is None:
            own = [
                inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation="Any"),
            ]
        else:
            own = list(inspect.signature(init).parameters.values())
        names = {p.name for p in own}
        added = [
            inspect.Parameter(
                p.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if p.name in self.required else self.defaults.get(p.name),
                annotation=p.type_hint,
            )
            for p in self.table
            if p.name not in names
        ]
        # Required keyword-only parameters may follow optional ones; **kwargs stays last.
        return inspect.Signature([*own[:-1], *added, own[-1]], return_annotation="None")

    def take(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The parameters' values, removed from ``kwargs`` (defaults for those not given).

        :param kwargs: the operator's keyword arguments.
        :raises TypeError: when a required one is missing (as Python would for a named argument).
        """
        missing = sorted(n for n in self.required if n not in kwargs)
        if missing:
            raise TypeError(f"missing keyword argument(s) {', '.join(map(repr, missing))}")
        return {name: kwargs.pop(name, self.defaults.get(name)) for name in self.parameters}


def _matches(table_path: str, path: str) -> bool:
    """``path`` (generic) is ``table_path`` or below it; ``*`` matches any one member."""
    want = table_path.replace("[]", "").split(".")
    have = path.replace("[]", "").split(".")
    if len(have) < len(want):
        return False
    return all(w == "*" or w == h for w, h in zip(want, have, strict=False))


def raise_if(errors: Sequence[str], subject: str = "Autopilot job request") -> None:
    """
    Raise one :class:`AutopilotValidationError` listing ``errors``, when there are any.

    :param errors: the broken rules.
    :param subject: what was invalid, for the error's title (``Invalid <subject>``).
    """
    if errors:
        from airflow_autopilot.exceptions import AutopilotValidationError

        raise AutopilotValidationError(list(errors), subject=subject)


def empty_rendering_error(value: Any, field: str) -> str | None:
    """
    The message for a name that is the text of an empty value (``"None"``, ``"null"``, blank), as a
    template such as ``"{{ ti.xcom_pull(task_ids='create') }}"`` renders a missing XCom; else ``None``.

    :param value: the rendered parameter.
    :param field: the parameter, for the message.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text and text.lower() not in EMPTY_RENDERINGS:
        return None
    shown = "required, got a blank string," if not text else f"{value!r} is"
    return (
        f"{field}: {shown} what a template renders for an empty value: the XCom it pulls, as in "
        "\"{{ ti.xcom_pull(task_ids='...') }}\", is probably missing. Check that the upstream task "
        "ran and pushed that XCom (task id and key), or pass the value itself"
    )
