"""Sign-in under AppTest: nothing but the form until signed in, lockout, roles, refusal.

The browser half (the cookie across a reload) is in test_signin_browser.py.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from streamlit import config
from streamlit.testing.v1 import AppTest

from core.store import lockout, users
from core.store.users import UserStore
from core.store.workspace import Workspace
from tests.app.conftest import HOME
from tests.core.full_disk import full_disk


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def accounts(env: Workspace) -> UserStore:
    store = UserStore(env)
    store.add("vera", "viewer pass", "viewer")
    store.add("ed", "editor pass", "editor")
    return store


def sign_in(name: str, password: str, at: AppTest | None = None) -> AppTest:
    at = at or AppTest.from_file(HOME, default_timeout=60)
    at.run()
    at.text_input(key="signin_name").input(name)
    at.text_input(key="signin_password").input(password)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    return " ".join(str(e.value) for e in (*at.title, *at.markdown, *at.caption, *at.error))


def test_only_the_form_is_served_before_sign_in(accounts: UserStore) -> None:
    at = AppTest.from_file(HOME, default_timeout=60)
    at.run()
    assert [t.value for t in at.title] == ["SceneSeek"]
    assert [w.label for w in at.text_input] == ["User name", "Password"]
    assert "Library" not in shown(at) and not at.sidebar.button
    with pytest.raises(ValueError, match=r"Known pages") as refused:
        at.switch_page("views/search.py")  # each URL answers with the form, no page's script
    assert "views/" not in str(refused.value).split("Known pages")[1]


def test_a_wrong_password_is_refused_and_locks_after_five(accounts: UserStore) -> None:
    at = sign_in("vera", "wrong pass")
    assert "wrong user name or password" in shown(at)
    assert [w.label for w in at.text_input] == ["User name", "Password"]
    for _ in range(4):
        at = sign_in("vera", "wrong pass", at)
    assert "try again in 30 s" in shown(at)
    assert "try again in" in shown(sign_in("vera", "viewer pass"))  # a reload keeps the lock


def test_an_unknown_name_is_locked_after_five_like_a_real_one(accounts: UserStore) -> None:
    at = None
    for _ in range(4):
        at = sign_in("nobody", "wrong pass", at)
        assert "wrong user name or password" in shown(at)
    assert "for this name; try again in 30 s" in shown(sign_in("nobody", "wrong pass", at))


def test_a_full_disk_refuses_every_sign_in(accounts: UserStore) -> None:
    at = AppTest.from_file(HOME, default_timeout=60)
    at.run()
    answers = []
    with full_disk():
        for name, password in [("vera", "wrong pass")] * 6 + [("vera", "viewer pass")]:
            at.text_input(key="signin_name").input(name)
            at.text_input(key="signin_password").input(password)
            at.button[0].click().run()
            answers.append((shown(at), [w.label for w in at.text_input], bool(at.exception)))
    for text, widgets, raised in answers:
        assert lockout.UNAVAILABLE in re.sub(r"\\(.)", r"\1", text)  # markdown unescaped
        assert widgets == ["User name", "Password"] and not raised


def test_viewer_and_editor_see_their_pages(accounts: UserStore) -> None:
    viewer = sign_in("vera", "viewer pass")
    assert viewer.title[0].value == "Library"
    assert not [b for b in viewer.button if b.label == "Add scene"]
    assert "Editors add" in shown(viewer)
    assert "vera · viewer" in " ".join(str(h.proto.body) for h in viewer.sidebar.get("html"))
    viewer.switch_page("views/finetune.py").run()
    assert not [b for b in viewer.button if b.label == "Fine-tune"]
    assert "Editors write captions" in shown(viewer)

    editor = sign_in("ed", "editor pass")
    assert [b for b in editor.button if b.label == "Add scene"]
    token = editor.session_state["session_token"]
    assert accounts.verify_token(token).role == "editor"
    editor.sidebar.button(key="sign-out").click().run()
    assert [w.label for w in editor.text_input] == ["User name", "Password"]
    assert accounts.verify_token(token) is None  # the cookie is void everywhere


def test_removing_an_account_ends_its_session(accounts: UserStore) -> None:
    at = sign_in("ed", "editor pass")
    assert at.title[0].value == "Library"
    accounts.remove("ed")
    at.run()
    assert [w.label for w in at.text_input] == ["User name", "Password"]


def test_a_name_added_again_does_not_take_over_the_old_session(accounts: UserStore) -> None:
    at = sign_in("ed", "editor pass")
    assert at.title[0].value == "Library"
    accounts.remove("ed")
    accounts.add("ed", "editor pass", "viewer")  # before the old session's next click
    at.run()
    assert [w.label for w in at.text_input] == ["User name", "Password"]


def test_no_account_and_a_public_address_shows_only_how_to_add_one(env: Workspace) -> None:
    address = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = AppTest.from_file(HOME, default_timeout=60)
        at.run()
    finally:
        config.set_option("server.address", address)
    assert "python \\-m core users add" in at.error[0].value
    assert str(env.root) not in re.sub(r"\\(.)", r"\1", at.error[0].value)  # no server paths
    assert [t.value for t in at.title] == ["SceneSeek"] and not at.button


@pytest.mark.parametrize("value", ["nan", "abc"])
def test_a_malformed_setting_shows_its_message_and_nothing_else(
    accounts: UserStore, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SCENESEEK_SESSION_HOURS", value)
    at = AppTest.from_file(HOME, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    message = re.sub(r"\\(.)", r"\1", at.error[0].value)
    assert f"SCENESEEK_SESSION_HOURS='{value}' is not a finite number" in message
    assert [t.value for t in at.title] == ["SceneSeek"] and not at.text_input and not at.button
