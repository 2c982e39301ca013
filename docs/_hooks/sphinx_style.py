"""
Griffe extension for the API pages: the two Sphinx conventions griffe's Sphinx parser leaves alone.

* ``#:`` comments. A constant or attribute documented Sphinx-style, with ``#:`` comment lines right
  above its assignment, gets that text as its docstring (griffe only reads a string literal *after*
  an assignment), so it is listed with its description instead of being hidden as undocumented.
* Cross-reference roles. ``:class:`~airflow_autopilot.triggers.AutopilotJobTrigger```,
  ``:func:`to_json_safe``` and the like become the name in code font, linked to its API entry when
  the site documents it. The link is an *optional* mkdocs-autorefs reference: a name the site does
  not document (an Airflow class, say) stays plain code and does not fail the strict build. Names
  resolve like Sphinx: a full dotted path as is, otherwise from the docstring's scope (its class
  and module members, the module's imports). ``~`` shows only the last component.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(
    r":(?:py:)?(?:class|exc|func|meth|attr|data|const|obj|mod|type):"
    r"`(?:(?P<title>[^`<]+?)\s*<(?P<titled>~?[\w.]+)>|(?P<target>~?[\w.]+))`"
)


def _comment_doc(obj: griffe.Object) -> tuple[str, int] | None:
    """The ``#:`` comment block right above ``obj``'s assignment, and its first line number."""
    try:
        lines = obj.lines_collection[obj.filepath]  # type: ignore[index]
    except Exception:
        return None
    if not obj.lineno:
        return None
    index = obj.lineno - 2  # the line above the assignment, 0-based
    block: list[str] = []
    while index >= 0 and lines[index].lstrip().startswith("#:"):
        block.insert(0, lines[index].lstrip()[2:].strip())
        index -= 1
    return ("\n".join(block), index + 2) if block else None


def _resolve(obj: griffe.Object, name: str) -> str | None:
    name = name.lstrip(".")
    if name.startswith("airflow_autopilot"):
        return name
    head, _, rest = name.partition(".")
    try:
        base = obj.resolve(head)
    except Exception:  # not in scope: a builtin, or a name the site cannot link
        return None
    return f"{base}.{rest}" if rest else base


def _rewrite_roles(obj: griffe.Object, text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = match["titled"] or match["target"]
        name = raw.lstrip("~")
        shown = match["title"] or (name.rsplit(".", 1)[-1] if raw.startswith("~") else name)
        label = f"<code>{shown}</code>"
        identifier = _resolve(obj, name)
        if identifier is None:
            return label
        return f'<autoref identifier="{identifier}" optional>{label}</autoref>'

    return _ROLE.sub(replace, text)


class SphinxStyle(griffe.Extension):
    """Apply both conventions to every object of a loaded package."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.is_attribute and obj.docstring is None and (found := _comment_doc(obj)):
                text, lineno = found
                obj.docstring = griffe.Docstring(
                    text,
                    lineno=lineno,
                    endlineno=obj.lineno - 1 if obj.lineno else None,
                    parent=obj,
                    parser=loader.docstring_parser,
                    parser_options=loader.docstring_options,
                )
            if obj.docstring is not None and ":" in obj.docstring.value:
                obj.docstring.value = _rewrite_roles(obj, obj.docstring.value)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
