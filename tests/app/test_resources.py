"""The shared engine: one model for all sessions, safe while scenes are being ingested."""

from __future__ import annotations

import threading
import time

from app import querying, resources
from core.jobs import get_job, ingest_params, start_job
from core.search.ranking import Filters
from core.store.workspace import Workspace
from tests.app.conftest import SMALL_SCENE, SMALL_TILING


def test_two_sessions_search_while_a_third_ingests(ready_env: Workspace) -> None:
    engine = resources.engine()
    assert resources.engine() is engine  # cached: never reloaded per query
    job = start_job(ready_env, "ingest", ingest_params(SMALL_SCENE, "second", SMALL_TILING))
    failures: list[BaseException] = []

    def session(text: str) -> None:
        try:
            while get_job(ready_env, job.id).active:
                result = querying.run_query(engine, querying.text_query(text), Filters(k=5))
                assert len(result.hits) == 5
                time.sleep(0.1)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    sessions = [threading.Thread(target=session, args=(t,)) for t in ("a road", "trees")]
    for thread in sessions:
        thread.start()
    deadline = time.time() + 120
    while get_job(ready_env, job.id).active and time.time() < deadline:
        time.sleep(0.2)
    for thread in sessions:
        thread.join(timeout=30)
    assert failures == []
    assert get_job(ready_env, job.id).status == "done"
    only_new = Filters(scenes=("second",), k=3)
    result = querying.run_query(engine, querying.text_query("a road"), only_new)
    assert {hit.scene for hit in result.hits} == {"second"}  # picked up without a reload
