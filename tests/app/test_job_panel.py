"""A failed job: everyone sees its one-line error, only admins its log (tracebacks, paths)."""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from core.jobs import log_path, start_job
from core.store import users
from core.store.users import UserStore
from core.store.workspace import Workspace
from tests.app.conftest import ROOT, finished
from tests.app.test_signin import sign_in


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def page_text(at: AppTest) -> str:
    """Every alert, text, code block and expander label, with Markdown escapes removed."""
    elements = (*at.error, *at.markdown, *at.caption, *at.code, *at.expander)
    text = "\n".join(str(getattr(e, "value", "")) + str(getattr(e, "label", "")) for e in elements)
    return re.sub(r"\\(.)", r"\1", text)


def test_a_failed_job_shows_viewers_one_line_and_admins_the_log(env: Workspace) -> None:
    accounts = UserStore(env)
    accounts.add("vera", "viewer pass", "viewer")
    accounts.add("ada", "admin pass", "admin")
    job = start_job(env, "finetune", {"cfg": {"no_such_setting": 1}})  # a bug, not a refusal
    failed = finished(env, job.id, timeout=120)
    log = log_path(env, job.id).read_text()
    assert failed.status == "failed" and "Traceback" in log and str(ROOT) in log
    assert failed.error == (
        "TypeError: FinetuneCfg.__init__() got an unexpected keyword argument 'no_such_setting'"
    )

    viewer = sign_in("vera", "viewer pass")  # lands on the Library, which lists jobs
    shown = page_text(viewer)
    assert failed.error in shown
    assert "Traceback" not in shown and str(ROOT) not in shown
    assert "Job log" not in [e.label for e in viewer.expander]

    admin = sign_in("ada", "admin pass")
    assert "Job log" in [e.label for e in admin.expander]
    assert any("Traceback" in c.value and str(ROOT) in c.value for c in admin.code)
