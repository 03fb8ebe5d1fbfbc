"""Precise exceptions, one per failure an analyst or developer can act on.

Some also inherit a builtin so generic handlers (``except ValueError``) still catch them.
"""

from __future__ import annotations


class SceneSeekError(Exception):
    """Root of every error raised on purpose by SceneSeek's engine."""


class ConfigError(SceneSeekError, ValueError):
    """Raised when a model or run configuration is invalid."""


class DatasetNotFoundError(SceneSeekError, FileNotFoundError):
    """Raised when a dataset's files are missing; the message names the path and the fix."""


class DatasetFormatError(SceneSeekError, ValueError):
    """Raised when dataset files are misaligned, empty or malformed; names file and line."""


class ImageReadError(SceneSeekError, OSError):
    """Raised when an image file is missing or cannot be decoded."""


class CheckpointError(SceneSeekError, ValueError):
    """Raised when a checkpoint is unreadable, of another format version or architecture."""


class WeightsNotFoundError(SceneSeekError, FileNotFoundError):
    """Raised when pretrained weights are neither installed nor given as a path."""


class QueryError(SceneSeekError, ValueError):
    """Raised when a search query is empty, too long or otherwise unusable."""


class IndexMismatchError(SceneSeekError, ValueError):
    """Raised when an index was built by another model version, metric or dimension."""


class WorkspaceError(SceneSeekError, OSError):
    """Raised when the workspace layout is missing or inconsistent."""


class SceneNotFoundError(WorkspaceError, FileNotFoundError):
    """Raised when a named scene is not in the workspace."""


class JobError(SceneSeekError, RuntimeError):
    """Raised when a background job cannot be started, found or cancelled."""


class FeedbackError(SceneSeekError, ValueError):
    """Raised when a mark is malformed or an import line cannot be read."""


class FinetuneError(SceneSeekError, ValueError):
    """Raised when there are not enough marks to fine-tune, or promotion is refused."""


class SceneBusyError(WorkspaceError):
    """Raised when another process is writing the scene (ingest, re-index or delete)."""


class DiskSpaceError(WorkspaceError):
    """Raised when writing would leave less free disk than ``SCENESEEK_MIN_FREE_GB``."""


class AccountError(SceneSeekError, ValueError):
    """Raised when a user name, role or password is invalid, or the account does not exist."""


class SignInError(SceneSeekError, PermissionError):
    """Raised when a sign-in is refused: wrong name or password, or the name is locked."""


class ForbiddenError(SceneSeekError, PermissionError):
    """Raised when the signed-in person's role does not allow an action."""


class ExportRefusedError(SceneSeekError, RuntimeError):
    """Raised when an exported ONNX graph does not reproduce torch's vectors closely enough."""


class PairError(SceneSeekError, ValueError):
    """Raised when two scenes cannot be compared: one scene twice, or no common ground."""


class ClusterError(SceneSeekError, ConnectionError):
    """Raised when the Dask scheduler cannot be reached or has no worker to search with."""


class AreaError(SceneSeekError, ValueError):
    """Raised when an area of interest is unreadable, not a lon/lat polygon, or too large."""


class ServeError(SceneSeekError, OSError):
    """Raised when the front cannot listen, or the app it starts stops on its own."""
