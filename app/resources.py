"""Objects shared by every browser session: the model and the search indexes.

``st.cache_resource`` hands the same ``Engine`` to all sessions and threads, so everything
that mutates it (``SearchResources.refresh``) or reads it while it may change (a search)
runs under the engine's lock. The model is loaded once per (workspace, model version):
promoting another version loads that one; nothing is reloaded per query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import streamlit as st

from core.engine import load_engine_model
from core.search import SearchResources
from core.settings import get_settings
from core.versions import ModelRegistry, ModelVersion
from core.workspace import Workspace


@dataclass
class Engine:
    """The loaded model and indexes of one workspace, with the lock that guards them."""

    resources: SearchResources
    version: ModelVersion
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def searching(self) -> Iterator[SearchResources]:
        """Hold the lock, pick up scenes ingested since the last query, and yield them."""
        with self.lock:
            self.resources.refresh()
            yield self.resources


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
def _load_engine(root: str, version: int, tag: str) -> Engine:
    ws = Workspace(root)
    registry = ModelRegistry(ws)
    chosen = registry.get(version)
    loaded = load_engine_model(ws, chosen.path, get_settings().device)
    resources = SearchResources.load(ws, loaded.model, chosen.tag, loaded.device, loaded.towers)
    return Engine(resources, chosen)


def engine() -> Engine:
    """The shared engine for the workspace's active model version.

    Raises:
        CheckpointError: when no model is installed or configured.
    """
    ws = workspace()
    version = active_version(ws)
    return _load_engine(str(ws.root), version.version, version.tag)
