"""A message left by a callback and shown once on the next run of the page.

Callbacks run before the script, so they cannot draw where the page draws; they leave the
message in ``state.NOTICE`` and the page shows it (escaped) where it chooses.
"""

from __future__ import annotations

from typing import Literal

import streamlit as st

from app import state
from app.text import md

Level = Literal["success", "info", "warning", "error"]


def notify(level: Level, message: str) -> None:
    """Leave ``message`` (plain text, escaped here) for the next run to show."""
    st.session_state[state.NOTICE] = (level, md(message))


def show() -> None:
    """Show the pending message, if any, and forget it."""
    notice = st.session_state[state.NOTICE]
    if notice:
        level, message = notice
        getattr(st, level)(message)
        st.session_state[state.NOTICE] = None
