"""Default wait settings that DAG-facing signatures need at import (the sensor's), kept apart from
the wait machines in ``core.waits`` so that parsing a DAG file does not load it.
"""

from __future__ import annotations

#: Seconds after a job's creation during which ResourceNotFound is taken as eventual consistency.
DEFAULT_NOT_FOUND_GRACE_SECONDS = 60.0
#: At most one ListCandidatesForAutoMLJob call this often while candidates train.
DEFAULT_CANDIDATE_COUNT_INTERVAL = 300.0
