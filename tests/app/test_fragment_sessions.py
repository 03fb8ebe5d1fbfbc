"""A revoked session gets nothing more from a page's live fragments (their 2-second reruns).

A fragment's timer reruns only the fragment, not the entry file that checks the session, so
each fragment checks it again itself. ``rerun_fragments`` asks Streamlit's script runner for
exactly what the browser's timer asks for: a rerun of the page's fragments, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from argon2 import PasswordHasher
from streamlit.runtime.scriptrunner import RerunData
from streamlit.testing.v1 import AppTest, local_script_runner

from core.store import users
from core.store.users import UserStore
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_NAME
from tests.app.test_signin import sign_in

REVOKE: dict[str, Callable[[UserStore], None]] = {
    "users remove": lambda store: store.remove("ed"),
    "users passwd": lambda store: store.set_password("ed", "a new pass"),
    "sign out everywhere": lambda store: store.sign_out("ed"),
}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def accounts(ready_env: Workspace) -> UserStore:
    store = UserStore(ready_env)
    store.add("ed", "editor pass", "editor")
    store.add("vera", "viewer pass", "viewer")  # with no account left the app goes anonymous
    return store


def rerun_fragments(at: AppTest, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """Rerun only the fragments the last run registered, as their ``run_every`` timer does."""
    fragments = list(at._fragment_storage._fragments)
    assert fragments, "the page has no fragment to rerun"
    with monkeypatch.context() as patched:
        patched.setattr(
            local_script_runner,
            "RerunData",
            partial(RerunData, fragment_id_queue=fragments, is_auto_rerun=True),
        )
        at.run()
    assert not at.exception, at.exception
    return at


def html(at: AppTest) -> str:
    return " ".join(str(h.proto.body) for h in at.get("html"))


def captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.caption)


def test_a_fragment_rerun_shows_the_signed_in_session_its_data(
    accounts: UserStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = rerun_fragments(sign_in("ed", "editor pass"), monkeypatch)
    assert SMALL_NAME in html(at)
    assert not [w for w in at.text_input if w.label == "User name"]


@pytest.mark.parametrize("revoke", REVOKE.values(), ids=REVOKE.keys())
def test_a_revoked_session_gets_the_sign_in_form_not_the_scenes(
    accounts: UserStore, revoke: Callable[[UserStore], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in("ed", "editor pass")
    assert SMALL_NAME in html(at)
    revoke(accounts)
    rerun_fragments(at, monkeypatch)
    assert SMALL_NAME not in html(at)
    assert [w.label for w in at.text_input] == ["User name", "Password"]


def test_a_revoked_session_gets_nothing_from_the_fine_tune_page(
    accounts: UserStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = sign_in("ed", "editor pass")
    at.switch_page("views/finetune.py").run()
    assert "marks and captions train" in captions(at)
    accounts.remove("ed")
    rerun_fragments(at, monkeypatch)
    assert "marks and captions train" not in captions(at)
    assert [w.label for w in at.text_input] == ["User name", "Password"]
