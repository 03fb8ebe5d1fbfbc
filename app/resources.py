"""Objects shared by every browser session: the engine (model and search indexes).

``st.cache_resource`` hands the same ``core.Engine`` to all sessions and threads; the engine
guards itself with its lock. It is loaded once per (workspace, model version, Dask cluster):
promoting another version loads that one; nothing is reloaded per query.
"""

from __future__ import annotations

import streamlit as st

from core import Engine, ModelRegistry, ModelVersion, Workspace, get_settings


def workspace() -> Workspace:
    """The configured workspace (``SCENESEEK_WORKSPACE``), read fresh so tests can set it."""
    return Workspace(get_settings().workspace)


def active_version(ws: Workspace) -> ModelVersion:
    """The model version searches and ingestion use.

    Raises:
        CheckpointError: when no model is installed or configured.
    """
    return ModelRegistry(ws).active()


@st.cache_resource(show_spinner="Loading the model and indexes…", max_entries=4)
def _load_engine(root: str, version: int, tag: str, dask: str) -> Engine:
    return Engine.load(Workspace(root), version, get_settings().device, dask=dask)


def engine() -> Engine:
    """The shared engine for the workspace's active model version.

    Raises:
        CheckpointError: when no model is installed or configured.
    """
    ws = workspace()
    version = active_version(ws)
    return _load_engine(str(ws.root), version.version, version.tag, get_settings().dask)
