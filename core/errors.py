"""Errors that the CLI turns into one line on stderr and an exit code.

UsageError (exit 2): the user asked for something invalid (bad value, missing input).
RunFailure (exit 1): the request was valid but the run could not complete.
"""


class TrustlabError(Exception):
    exit_code = 1


class UsageError(TrustlabError):
    exit_code = 2


class RunFailure(TrustlabError):
    exit_code = 1


class DataMissing(RunFailure):
    """A dataset's files are not where any source looks (the message names every path)."""


class DownloadFailed(DataMissing):
    """The files are not there and the download failed (offline, server down)."""


class DataRootMissing(UsageError, DataMissing):
    """The data root itself does not exist: a usage error (exit 2), and for an optional target, missing data."""


def require(condition: bool, message: str) -> None:
    """Raise UsageError(message) unless condition holds."""
    if not condition:
        raise UsageError(message)
