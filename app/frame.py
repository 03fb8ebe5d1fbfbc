"""The frame every page shares: styles and the sidebar (workspace, active model)."""

from __future__ import annotations

import html

import streamlit as st

from app.auth import sign_out
from app.resources import active_version, workspace
from app.text import md
from core import SceneSeekError, User, get_settings

CSS = """
<style>
.block-container { padding-top: 2.2rem; padding-bottom: 1rem; }
h1 { font-size: 1.75rem !important; }
.ss-brand { font-weight: 700; font-size: 1.25rem; letter-spacing: .01em; color: #1f6f8b; }
.ss-side { font-size: .82rem; line-height: 1.35; color: #40525c; margin: .1rem 0 .6rem; }
.ss-side b { display: block; color: #1c2b33; font-size: .72rem; text-transform: uppercase;
  letter-spacing: .06em; margin-bottom: .1rem; }
.ss-side code { font-size: .78rem; word-break: break-all; background: transparent; padding: 0; }
.ss-card { font-size: .88rem; line-height: 1.35; }
.ss-card .rank { display: inline-block; min-width: 1.6rem; padding: 0 .35rem; border-radius: 4px;
  font-weight: 700; text-align: center; color: #10212b; margin-right: .35rem; }
.ss-card .meta { color: #5b6b74; font-size: .8rem; }
.ss-card .mark { font-size: .78rem; font-weight: 600; }
.ss-card .mark.relevant { color: #1a7f37; }
.ss-card .mark.irrelevant { color: #b42318; }
.st-key-gallery button { padding: .15rem .45rem; min-height: 2rem; }
.st-key-gallery [data-testid="stVerticalBlockBorderWrapper"] { padding: .6rem; }
.ss-summary { font-size: .95rem; color: #1c2b33; }
.ss-summary .muted { color: #5b6b74; }
</style>
"""


def check_config() -> None:
    """Warn when the app runs without ``.streamlit/config.toml`` (maps need static serving)."""
    if not st.get_option("server.enableStaticServing"):
        st.error(
            "Static file serving is off, so maps cannot load Leaflet. Start the app from the "
            "repository root (`make run`), which reads `.streamlit/config.toml`."
        )


def model_missing(exc: Exception) -> None:
    """Say that no model is available, and how to provide one."""
    st.error(f"No model is available: {md(str(exc))}. Set `SCENESEEK_MODEL` to a checkpoint.")


def _item(label: str, value: str) -> str:
    return f"<div class='ss-side'><b>{html.escape(label)}</b>{value}</div>"


def sidebar(user: User) -> None:
    """Who is signed in, workspace path, import folder and active model, on every page."""
    st.html(CSS)
    settings = get_settings()
    ws = workspace()
    with st.sidebar:
        try:
            version = active_version(ws)
            model = html.escape(version.label) + (
                f" · {html.escape(version.note)}" if version.note else ""
            )
        except SceneSeekError as exc:
            model = f"<span style='color:#b42318'>{html.escape(str(exc))}</span>"
        st.html(
            "<div class='ss-brand'>SceneSeek</div>"
            + _item("Workspace", f"<code>{html.escape(str(ws.root))}</code>")
            + _item("Active model", model)
            + _item("Import folder", f"<code>{html.escape(str(settings.import_dir))}</code>")
        )
        if user.name:
            st.html(_item("Signed in", f"{html.escape(user.name)} · {user.role}"))
            st.button("Sign out", key="sign-out", icon=":material/logout:", on_click=sign_out)
