"""Async machinery of the triggers: shared aiobotocore clients and the coalesced poller."""
