"""Sign-in in headless Chromium: deep links, refusals, the cookie, roles, revocation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from bench.browser import CHROMIUM, CHROMIUM_ARGS, serve_app
from core.store import users
from core.store.users import UserStore
from core.store.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def accounts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UserStore:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    store = UserStore(Workspace(tmp_path / "workspace"))
    store.add("vera", "viewer pass", "viewer")
    store.add("ed", "editor pass", "editor")
    return store


@pytest.fixture
def app_url(tmp_path: Path, checkpoint: Path, accounts: UserStore) -> Iterator[str]:
    env = {
        "SCENESEEK_WORKSPACE": str(tmp_path / "workspace"),
        "SCENESEEK_IMPORT_DIR": str(tmp_path / "import"),
        "SCENESEEK_MODEL": str(checkpoint),
    }
    with serve_app(env, tmp_path / "streamlit.log") as url:
        yield url


def test_sign_in_roles_and_the_session_cookie(app_url: str, accounts: UserStore) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("install Chromium: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page()
        try:
            form = page.get_by_label("User name")

            def sign_in(name: str, password: str) -> None:
                form.fill(name)
                page.get_by_role("textbox", name="Password").fill(password)
                page.get_by_role("button", name="Sign in").click()

            page.goto(f"{app_url}/search")  # a direct URL lands on the form, nothing else
            expect(form).to_be_visible(timeout=30_000)
            expect(page.get_by_text("Page not found")).to_have_count(0)  # /search is routable
            expect(page.get_by_text("Library")).to_have_count(0)
            expect(page.get_by_text("Describe what to find")).to_have_count(0)

            sign_in("vera", "not her password")
            expect(page.get_by_text("wrong user name or password")).to_be_visible(timeout=15_000)
            expect(page.get_by_role("heading", name="Library")).to_have_count(0)

            sign_in("vera", "viewer pass")  # and then the page the link asked for
            expect(page.get_by_role("heading", name="Search")).to_be_visible(timeout=30_000)
            expect(page).to_have_url(f"{app_url}/search")
            page.goto(app_url)
            expect(page.get_by_role("heading", name="Library")).to_be_visible(timeout=30_000)
            expect(page.get_by_text("vera · viewer")).to_be_visible()
            expect(page.get_by_role("button", name="Add scene")).to_have_count(0)

            page.reload()  # a new Streamlit session: the signed cookie keeps her in
            expect(page.get_by_role("heading", name="Library")).to_be_visible(timeout=30_000)
            expect(form).to_have_count(0)

            page.get_by_role("button", name="Sign out").click()
            expect(form).to_be_visible(timeout=15_000)
            page.reload()  # the cookie is void now
            expect(form).to_be_visible(timeout=30_000)

            sign_in("ed", "editor pass")
            expect(page.get_by_role("button", name="Add scene")).to_be_visible(timeout=30_000)

            accounts.remove("ed")  # elsewhere: the Library's 2-second refresh must notice
            expect(form).to_be_visible(timeout=15_000)
            expect(page.get_by_role("heading", name="Library")).to_have_count(0)
        finally:
            browser.close()
