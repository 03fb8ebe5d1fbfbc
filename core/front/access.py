"""Who may send the front an upload or fetch a media file: the same rule as the app's gate.

With accounts, only a client whose ``sceneseek_session`` cookie ``UserStore.verify_token``
accepts; without, only a client the anonymous-on-loopback gate would serve.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.front.origin import served_host
from core.settings import Settings
from core.store.users import UserStore, anonymous_refusal

SESSION_COOKIE = "sceneseek_session"
GUARDED = ("/_stcore/upload_file/", "/media/")  # what Streamlit stores or serves per session


def is_guarded(path: str) -> bool:
    """True for paths that need a signed-in (or local anonymous) client."""
    collapsed = "/" + "/".join(part for part in path.split("/") if part)
    return collapsed.startswith(GUARDED) or collapsed + "/" in GUARDED


def refusal(
    store: UserStore,
    settings: Settings,
    cookies: Mapping[str, str],
    headers: Mapping[str, str],
    peer: str,
) -> str | None:
    """Why the front must not pass this request to Streamlit, or None when it may."""
    if store.has_users():
        if store.verify_token(cookies.get(SESSION_COOKIE)) is None:
            return "sign in first"
        return None
    host = served_host(headers, peer, settings.host)
    if anonymous_refusal(store.workspace, host, settings, paths=False):
        return "no user accounts, and this client is not on this machine"
    return None
