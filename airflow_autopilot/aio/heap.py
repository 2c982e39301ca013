"""Keeps a triggerer's full garbage collections short: its heap is frozen once, as our first trigger starts."""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

#: ``false`` (or ``0``/``no``/``off``) never freezes, ``true`` freezes in any process; unset, only an
#: ``airflow triggerer`` process does.
FREEZE_ENV = "AUTOPILOT_TRIGGERER_GC_FREEZE"

_OFF = {"0", "false", "no", "off"}
_ON = {"1", "true", "yes", "on"}


def in_triggerer(argv: Sequence[str]) -> bool:
    """Whether ``argv`` is an ``airflow triggerer`` command line (``airflow triggerer ...`` or
    ``python -m airflow triggerer ...``: Airflow 3's trigger runner is forked from it and keeps it)."""
    return len(argv) > 1 and argv[1] == "triggerer"


class HeapFreezer:
    """
    Moves every object the collector tracks into its permanent generation, once per process.

    A triggerer's heap is mostly long-lived: Airflow's imports, the task SDK, botocore's SageMaker
    model. Python's full collection walks all of it (about 300,000 objects, 0.1-0.3 s of CPU) while
    every thread waits, so a collection set off while triggers start blocks the event loop past
    Airflow's 0.2 s warning. Frozen objects are skipped by every later collection; objects made
    afterwards (each trigger's own) are collected as before. Airflow's executors and DAG processor
    freeze the same way before they fork. See docs/deployment.md.

    :param argv: the process's command line (default ``sys.argv``).
    :param environ: where :data:`FREEZE_ENV` is read (default ``os.environ``).
    :param freeze: what freezing calls (default :func:`gc.freeze`).
    """

    def __init__(
        self,
        *,
        argv: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        freeze: Callable[[], None] = gc.freeze,
    ) -> None:
        self._argv = argv
        self._environ = environ
        self._freeze = freeze
        self._lock = threading.Lock()
        self.frozen = False

    def wanted(self) -> bool:
        """Whether this process freezes: :data:`FREEZE_ENV` when set, else whether it is a triggerer."""
        environ = os.environ if self._environ is None else self._environ
        setting = environ.get(FREEZE_ENV, "").strip().lower()
        if setting in _OFF:
            return False
        if setting in _ON:
            return True
        return in_triggerer(sys.argv if self._argv is None else self._argv)

    def freeze_once(self) -> bool:
        """Freeze the heap unless this process already did or does not want it; True when it froze now."""
        with self._lock:
            if self.frozen or not self.wanted():
                return False
            self._freeze()
            self.frozen = True
            return True


#: The process's freezer: :func:`airflow_autopilot.aio.clients.shared_client` calls it as each trigger
#: starts, on the event loop (freezing is a list splice: no collection runs).
PROCESS_HEAP = HeapFreezer()
