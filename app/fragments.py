"""Live fragments that check the session on each of their own reruns.

A fragment's ``run_every`` timer (or a click inside it) reruns the fragment alone, not the
entry file whose ``auth.gate`` checks the session. Without a check of its own, a session
revoked meanwhile (account removed, new password, signed out everywhere) would go on
receiving fresh data every few seconds. Every fragment in ``app/`` comes from here
(``tests/test_house_rules.py`` holds to it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec

import streamlit as st

from app import auth

P = ParamSpec("P")


def signed_in_fragment(run_every: float) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """``st.fragment(run_every=...)`` that first checks the session as a full run does.

    When the session no longer holds, the whole app reruns instead, and its gate shows the
    sign-in form in place of the page.
    """

    def decorate(body: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(body)
        def checked(*args: P.args, **kwargs: P.kwargs) -> None:
            if auth.current() is None:
                st.rerun()
            body(*args, **kwargs)

        return st.fragment(checked, run_every=run_every)

    return decorate
