"""One botocore data loader for the whole process, so that SageMaker's service model is parsed once
however many boto3 sessions a process makes (the test suite, the emulator, the demo)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import botocore.loaders
    import botocore.session


class _PathsWithoutRepeats(list):
    """A loader's search paths: every new boto3 session appends boto3's data folder to its loader's,
    which would grow a shared loader's list by one entry per session."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


_LOADER: botocore.loaders.Loader | None = None


def shared_loader() -> botocore.loaders.Loader:
    """
    The process's botocore data loader, created on first use from ``AWS_DATA_PATH`` as botocore
    would: it parses each service model, endpoint ruleset and partition file once and keeps it.
    """
    global _LOADER
    if _LOADER is None:
        import botocore.loaders

        paths = os.environ.get("AWS_DATA_PATH", "").split(os.pathsep)
        extra = _PathsWithoutRepeats(os.path.expanduser(os.path.expandvars(p)) for p in paths if p)
        _LOADER = botocore.loaders.Loader(extra_search_paths=extra)
    return _LOADER


def botocore_session() -> botocore.session.Session:
    """A new botocore session (its own credentials, config and event handlers) reading its service
    data through :func:`shared_loader`; wrap it in ``boto3.session.Session(botocore_session=...)``."""
    import botocore.session

    session = botocore.session.Session()
    session.register_component("data_loader", shared_loader())
    return session
