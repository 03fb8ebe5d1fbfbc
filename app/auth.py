"""Sign-in: who uses this session, and what their role lets them do.

Once the workspace has an account, the entry file routes every URL to the sign-in form
until the person signs in, so no other page can even be opened. With no account the app
serves anonymously (as an admin), but only to this machine: on any other address it shows
how to add a user and nothing else. The session is a signed token (``core.UserStore``)
kept in ``session_state`` and in a cookie written by a line of JavaScript, so it survives
a page reload; ``st.context.cookies`` reads it back when a new session starts. Every run
checks the token again, so removing an account (even if its name is added again), a new
password or a sign-out elsewhere takes effect at the next click.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from app import state
from app.resources import workspace
from app.text import md
from core import (
    ANONYMOUS,
    ForbiddenError,
    SceneSeekError,
    SignInError,
    User,
    UserStore,
    anonymous_refusal,
    get_settings,
    served_host,
)

COOKIE = "sceneseek_session"


def _store() -> UserStore:
    return UserStore(workspace())


def _served_host() -> str:
    """Where the person is: behind any proxy header, elsewhere, unless the front proves it."""
    remote = st.context.ip_address  # None for loopback connections (and outside a server)
    return served_host(
        dict(st.context.headers),
        remote if isinstance(remote, str) and remote else None,
        str(st.get_option("server.address") or ""),
        get_settings().front_token,
    )


def current() -> User | None:
    """The person using this session, checked against the accounts on every call."""
    store = _store()
    if not store.has_users():
        refused = anonymous_refusal(store.workspace, _served_host(), get_settings())
        return None if refused else ANONYMOUS
    token = st.session_state[state.SESSION] or st.context.cookies.get(COOKIE)
    user = store.verify_token(token)
    st.session_state[state.SESSION] = token if user else None
    return user


def require(action: str) -> User:
    """The current user, if their role allows ``action``.

    Raises:
        ForbiddenError: when it does not, or nobody is signed in.
    """
    user = current()
    if user is None:
        raise ForbiddenError("sign in first")
    user.require(action)
    return user


def can(action: str) -> bool:
    """True when the current user may ``action`` (to decide what to draw)."""
    user = current()
    return user is not None and user.can(action)


def _cookie_script() -> None:
    """Write or clear the session cookie in the browser, once, after a sign-in or out."""
    token = st.session_state[state.COOKIE_WRITE]
    if token is None:
        return
    st.session_state[state.COOKIE_WRITE] = None
    max_age = int(get_settings().session_hours * 3600) if token else 0
    st.html(
        f"<script>document.cookie = {json.dumps(f'{COOKIE}={token}')} + "
        f"'; Path=/; Max-Age={max_age}; SameSite=Strict' + "
        "(location.protocol === 'https:' ? '; Secure' : '');</script>",
        unsafe_allow_javascript=True,
    )


def _sign_in() -> None:
    name = st.session_state[state.SIGNIN_NAME].strip()
    password = st.session_state[state.SIGNIN_PASSWORD]
    st.session_state[state.SIGNIN_PASSWORD] = ""
    store = _store()
    try:
        user = store.sign_in(name, password)
    except SignInError as exc:
        st.session_state[state.SIGNIN_ERROR] = str(exc)
        return
    token = store.issue_token(user)
    st.session_state[state.SESSION] = token
    st.session_state[state.COOKIE_WRITE] = token
    st.session_state[state.SIGNIN_ERROR] = ""


def sign_out() -> None:
    """End this person's sessions (every browser) and forget the cookie."""
    user = current()
    if user is not None and user.name:
        _store().sign_out(user.name)
    st.session_state[state.SESSION] = None
    st.session_state[state.COOKIE_WRITE] = ""


def _sign_in_page() -> None:
    st.title("SceneSeek")
    with st.form("sign-in", width=420):
        st.text_input("User name", key=state.SIGNIN_NAME, autocomplete="username")
        st.text_input(
            "Password", type="password", key=state.SIGNIN_PASSWORD, autocomplete="current-password"
        )
        st.form_submit_button("Sign in", type="primary", on_click=_sign_in)
    if st.session_state[state.SIGNIN_ERROR]:
        st.error(md(st.session_state[state.SIGNIN_ERROR]))


def _refusal_page() -> None:
    store = _store()
    refusal = anonymous_refusal(store.workspace, _served_host(), get_settings(), paths=False)
    st.title("SceneSeek")
    st.error(md(f"Not available: {refusal}."))


def _settings_refusal() -> str | None:
    """Why the app cannot serve with these settings (``SCENESEEK_LOCKOUT_S=nan`` ...)."""
    try:
        get_settings()
    except SceneSeekError as exc:
        return str(exc)
    return None


def signed_out_page() -> None:
    """What every URL shows while nobody is signed in: the form, or why the app refuses."""
    (_sign_in_page if _store().has_users() else _refusal_page)()


def gate(stand_ins: Mapping[str, Sequence[StreamlitPage]]) -> User | None:
    """The signed-in user; until there is one, route every URL to the form (or refusal).

    ``stand_ins`` are the app's pages at their own URLs, each running ``signed_out_page``
    instead of its script: a deep link such as ``/search`` opens no "Page not found", and
    the run that signs the person in goes on to the page the URL asked for.
    """
    refusal = _settings_refusal()
    if refusal:  # a malformed limit must not switch itself off: serve nothing at all
        st.title("SceneSeek")
        st.error(md(f"Not available: {refusal}. Fix the setting and restart the app."))
        st.stop()
    _cookie_script()
    user = current()
    if user is None:
        st.navigation(stand_ins, position="hidden").run()
    return user
