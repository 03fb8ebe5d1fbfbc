"""Screenshots of the Change page in headless Chromium, for docs/RESULTS.md.

``python -m bench.shot_change WS BEFORE AFTER OUT_DIR [--text "a lake"]`` serves the app on
workspace ``WS`` (both scenes ingested), opens the Change page, aligns the pair if needed,
and saves ``change-biggest.png`` (heat map and the biggest changes) and, with ``--text``,
``change-query.png`` (what is new by that description) in ``OUT_DIR``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench.browser import CHROMIUM, CHROMIUM_ARGS, serve_app

VIEWPORT = {"width": 1500, "height": 1250}


def _wait_for_hits(page, timeout_s: float = 300) -> None:  # noqa: ANN001 - playwright page
    """Until the map shows numbered hits and the gallery its pictures."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for frame in page.frames:
            if "st_folium" in frame.url and frame.locator(".ss-rank").count() > 0:
                page.wait_for_timeout(2500)  # thumbnails and overlays settle
                return
        page.wait_for_timeout(250)
    raise AssertionError("no hits appeared on the Change page")


def shoot(ws: Path, before: str, after: str, out: Path, text: str | None) -> list[Path]:
    """Drive the page and save the screenshots; returns their paths."""
    from playwright.sync_api import expect, sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with serve_app({"SCENESEEK_WORKSPACE": str(ws)}, out / "streamlit.log") as url:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"{url}/change")
            expect(page.get_by_text("Earlier date")).to_be_visible(timeout=120_000)
            for label, name in (("Earlier date", before), ("Later date", after)):
                page.get_by_label(label, exact=True).click()
                page.get_by_role("option", name=name).first.click()
                page.wait_for_timeout(1500)
            compare = page.get_by_role("button", name="Compare these dates")
            if compare.count():
                compare.click()
            _wait_for_hits(page)
            saved.append(out / "change-biggest.png")
            page.screenshot(path=saved[-1], full_page=True)
            if text:
                box = page.get_by_label("What appeared or went (empty: the biggest changes)")
                box.fill(text)
                box.press("Enter")
                expect(page.get_by_text(f"new: “{text}”")).to_be_visible(timeout=120_000)
                _wait_for_hits(page)
                saved.append(out / "change-query.png")
                page.screenshot(path=saved[-1], full_page=True)
            browser.close()
    return saved


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workspace", type=Path)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("out", type=Path)
    parser.add_argument("--text")
    args = parser.parse_args()
    for path in shoot(args.workspace, args.before, args.after, args.out, args.text):
        print(path)
