"""
MkDocs hook: let `mkdocs build --strict` pass over a fixed list of known griffe warnings.

Griffe (the docstring parser of mkdocstrings) warns when a Sphinx ``:param x:`` names no parameter
of the signature. A few docstrings in the package document parameters that reach the class through
``**kwargs`` (Airflow's and the Amazon provider's base classes take them). Until those docstrings
change, each warning listed in ``KNOWN`` below is logged as INFO ("known source-docstring warning")
instead of WARNING, so strict mode still fails on everything else: a broken link, a missing
reference, or any *new* docstring warning. Delete an entry once its docstring is fixed (an entry
that no longer matches is reported at the end of the build) and this file once ``KNOWN`` is empty.
"""

from __future__ import annotations

import logging
import re
from typing import Any

#: (source file, documented parameter) pairs whose griffe warnings are known.
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        # AutopilotHook: AwsBaseHook's arguments arrive through *args/**kwargs.
        ("airflow_autopilot/hooks/autopilot.py", "aws_conn_id"),
        ("airflow_autopilot/hooks/autopilot.py", "region_name"),
        ("airflow_autopilot/hooks/autopilot.py", "verify"),
        ("airflow_autopilot/hooks/autopilot.py", "config"),
        # AutopilotCreateJobOperator: the connection parameters go to AutopilotBaseOperator via **kwargs.
        ("airflow_autopilot/operators/create.py", "aws_conn_id"),
        ("airflow_autopilot/operators/create.py", "region_name"),
        ("airflow_autopilot/operators/create.py", "verify"),
        ("airflow_autopilot/operators/create.py", "botocore_config"),
        # AutopilotJobSensor: poke_interval goes to BaseSensorOperator via **kwargs.
        ("airflow_autopilot/sensors.py", "poke_interval"),
    }
)

_WARNING = re.compile(
    r"(?P<path>[\w./\\-]+\.py):\d+: "
    r"(?:Parameter '(?P<unknown>[^']+)' does not appear in the function signature"
    r"|No matching parameter for '(?P<nomatch>[^']+)')"
)


class _KnownWarnings(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[tuple[str, str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        match = _WARNING.search(record.getMessage())
        if match is None:
            return True
        key = (match["path"].replace("\\", "/"), match["unknown"] or match["nomatch"])
        if key in KNOWN:
            self.seen.add(key)
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = f"known source-docstring warning: {record.getMessage()}", None
        return True


_filter = _KnownWarnings()
_logger = logging.getLogger("mkdocs.plugins.griffe")


def on_startup(**kwargs: Any) -> None:
    if _filter not in _logger.filters:
        _logger.addFilter(_filter)


def on_post_build(**kwargs: Any) -> None:
    stale = sorted(KNOWN - _filter.seen)
    if stale:
        logging.getLogger("mkdocs.hooks").info(
            "docs/_hooks/known_docstring_warnings.py: entries that no longer warn (delete them): %s", stale
        )
