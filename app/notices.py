"""A message left by a callback and shown for the next few seconds of the page.

Callbacks run before the script, so they cannot draw where the page draws; they leave the
message in ``state.NOTICE`` and the page shows it (escaped) where it chooses. It stays for
``NOTICE_S`` rather than one run: a live fragment redraws every 2 s, and a message shown
once there ("Deleted naip_2015.") was gone before anyone could read it.
"""

from __future__ import annotations

import time
from typing import Literal

import streamlit as st

from app import state
from app.text import md

Level = Literal["success", "info", "warning", "error"]
NOTICE_S = 10.0


def notify(level: Level, message: str) -> None:
    """Leave ``message`` (plain text, escaped here) for the next run to show."""
    st.session_state[state.NOTICE] = (level, md(message), time.monotonic() + NOTICE_S)


def show() -> None:
    """Show the pending message until it is ``NOTICE_S`` old, then forget it."""
    notice = st.session_state[state.NOTICE]
    if notice is None:
        return
    level, message, until = notice
    if time.monotonic() > until:
        st.session_state[state.NOTICE] = None
    else:
        getattr(st, level)(message)
