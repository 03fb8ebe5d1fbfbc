"""Library page: add scenes (upload or import folder), follow ingestion, manage scenes.

A refused upload or import keeps its error beside the box until the analyst removes or
replaces the file (or picks another path): the 2-second refresh of the jobs and scenes
below must not wipe it while the bad file still sits in the box.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import auth, notices, scenes, state, uploads
from app.errors import AppError
from app.fragments import signed_in_fragment
from app.frame import model_missing
from app.job_panel import jobs_view
from app.resources import active_version, workspace
from app.text import md, name_cell
from core import (
    ModelRegistry,
    SceneSeekError,
    get_settings,
    list_jobs,
    remote_scene_url,
    scene_name_from,
)
from tiles import TilesError

POLL_S = 2.0
SIZE_CHOICES = [64, 128, 256, 512, 1024, 2048]
STATUS_COLOURS = {
    "ready": "green",
    "indexing": "blue",
    "queued": "blue",
    "needs re-index": "orange",
    "incomplete": "gray",
}

ws = workspace()
settings = get_settings()
limit_mb = min(settings.max_upload_mb, int(st.get_option("server.maxUploadSize")))
upload_key = f"scene-upload-{st.session_state[state.UPLOAD_NONCE]}"


def _sticky_error(key: str, source: str | None) -> None:
    """Show the error kept under ``key`` while ``source`` is what it was about, else drop it."""
    kept = st.session_state[key]
    if kept and kept[0] == source:
        st.error(md(kept[1]))
    elif kept:
        st.session_state[key] = None


def _chosen_import() -> str | None:
    return st.session_state[state.IMPORT_PATH].strip() or st.session_state[state.IMPORT_CHOICE]


def _tiling() -> dict:
    return scenes.tiling(
        st.session_state[state.TILE_SIZES],
        st.session_state[state.OVERLAP],
        st.session_state[state.MIN_VALID],
    )


def _add_upload() -> None:
    upload = st.session_state.get(upload_key)
    if upload is None:
        notices.notify("warning", "Drop a GeoTIFF into the upload box first.")
        return
    try:
        user = auth.require("add_scene")
        wanted = st.session_state[state.UPLOAD_NAME].strip() or scene_name_from(upload.name)
        name, _ = scenes.add_scene(
            ws,
            wanted,
            lambda name: uploads.save_upload(upload, ws, name, limit_mb),
            _tiling(),
            owner=user.name,
            upload=True,
        )
    except (AppError, SceneSeekError) as exc:
        st.session_state[state.UPLOAD_ERROR] = (upload.file_id, str(exc))
        return
    st.session_state[state.UPLOAD_ERROR] = None
    st.session_state[state.UPLOAD_NONCE] += 1
    st.session_state[state.UPLOAD_NAME] = ""
    notices.notify("success", f"Ingesting {name}: follow its progress below.")


def _queue(source: str | Path, owner: str) -> str:
    """Queue the ingest of a server-side file or a URL, named after it; returns the name."""
    name, _ = scenes.add_scene(
        ws, scene_name_from(source), lambda name: source, _tiling(), owner=owner
    )
    return name


def _add_import() -> None:
    chosen = _chosen_import()
    if not chosen:
        notices.notify("warning", "Pick a file from the import folder or type its path.")
        return
    try:
        user = auth.require("add_scene")
        name = _queue(uploads.resolve_import(settings.import_dir, chosen), user.name)
    except (AppError, SceneSeekError) as exc:
        st.session_state[state.IMPORT_ERROR] = (chosen, str(exc))
        return
    st.session_state[state.IMPORT_ERROR] = None
    st.session_state[state.IMPORT_PATH] = ""
    notices.notify(
        "success", f"Ingesting {name} from the import folder: follow its progress below."
    )


def _add_remote() -> None:
    url = st.session_state[state.REMOTE_URL].strip()
    if not url:
        notices.notify("warning", "Type the URL of a cloud-optimised GeoTIFF or of a STAC item.")
        return
    try:
        user = auth.require("add_scene")
        asset = st.session_state[state.REMOTE_ASSET].strip() or None
        name = _queue(remote_scene_url(url, asset), user.name)
    except (AppError, SceneSeekError, TilesError) as exc:
        st.session_state[state.REMOTE_ERROR] = (url, str(exc))
        return
    st.session_state[state.REMOTE_ERROR] = None
    st.session_state[state.REMOTE_URL] = ""
    notices.notify("success", f"Ingesting {name} from its URL: follow its progress below.")


def _reindex(name: str) -> None:
    try:
        user = auth.require("reindex")
        scenes.start_reindex(ws, name, list_jobs(ws), owner=user.name)
    except (AppError, SceneSeekError) as exc:
        notices.notify("error", str(exc))


def _delete(name: str) -> None:
    try:
        auth.require("delete_scene")
        scenes.delete_scene(ws, name, list_jobs(ws))
        notices.notify("success", f"Deleted {name}.")
    except (AppError, SceneSeekError) as exc:
        notices.notify("error", str(exc))


def _scene_table(rows: list[scenes.SceneRow]) -> None:
    widths = [2.6, 2.2, 1.2, 1.6, 1, 0.8, 1.2, 1.4, 1.9]
    header = ["Scene", "Source", "CRS", "Size", "m/px", "Tiles", "Model", "Status", ""]
    for column, title in zip(st.columns(widths), header, strict=True):
        column.caption(title)
    for row in rows:
        cells = st.columns(widths, vertical_alignment="center")
        cells[0].html(name_cell(row.name))
        cells[1].text(row.source)
        cells[2].text(row.crs)
        cells[3].text(row.size)
        cells[4].text(f"{row.resolution_m:g} m" if row.resolution_m else "")
        cells[5].text(f"{row.tiles:,}" if row.tiles is not None else "")
        cells[6].text(row.model)
        with cells[7]:
            label = row.status
            if row.job is not None and row.job.total:
                label = f"{row.status} {row.job.fraction:.0%}"
            st.badge(label, color=STATUS_COLOURS.get(row.status, "gray"))
        if not auth.can("delete_scene"):
            continue
        reindex, delete = cells[8].columns(2)
        reindex.button(
            "",
            key=f"reindex-{row.name}",
            icon=":material/refresh:",
            help="Re-index with the active model (resumes an incomplete scene)",
            on_click=_reindex,
            args=(row.name,),
            disabled=row.job is not None,
        )
        with delete.popover(
            "", key=f"confirm-delete-{row.name}", icon=":material/delete:", help="Delete this scene"
        ):
            st.write(f"Delete **{md(row.name)}** and its index? Marks are kept.")
            st.button(
                "Delete",
                key=f"delete-{row.name}",
                type="primary",
                on_click=_delete,
                args=(row.name,),
                disabled=row.job is not None,
            )


@signed_in_fragment(run_every=POLL_S)
def _live() -> None:
    """Jobs and scenes, re-read every few seconds so progress shows without a reload."""
    jobs = list_jobs(ws)
    notices.show()
    jobs_view(ws, jobs)
    st.subheader("Scenes")
    try:
        versions = ModelRegistry(ws).versions()
        active = active_version(ws)
    except SceneSeekError as exc:
        model_missing(exc)
        return
    rows = scenes.scene_rows(ws, jobs, versions, active)
    if not rows:
        adding = "Upload a GeoTIFF or import one from the import folder above."
        st.info(f"No scenes yet. {adding if auth.can('add_scene') else 'Editors add them.'}")
        return
    _scene_table(rows)


def _add_scenes() -> None:
    """Upload and import boxes, and the tiling options both use (editors and admins)."""
    add_upload, add_import = st.columns(2, gap="large")
    with add_upload, st.container(border=True):
        st.markdown("**Upload a scene**")
        upload = st.file_uploader(
            "GeoTIFF",
            type=["tif", "tiff"],
            key=upload_key,
            max_upload_size=limit_mb,
            help=f"Up to {limit_mb} MB. Bigger scenes: use the import folder.",
        )
        st.text_input(
            "Scene name",
            key=state.UPLOAD_NAME,
            placeholder=scene_name_from(upload.name) if upload else "from the file name",
        )
        st.button("Add scene", key="add-upload", type="primary", on_click=_add_upload)
        _sticky_error(state.UPLOAD_ERROR, upload.file_id if upload else None)

    with add_import, st.container(border=True):
        st.markdown("**Import from the server's folder**")
        candidates = uploads.import_candidates(settings.import_dir)
        st.selectbox(
            f"GeoTIFFs in {md(str(settings.import_dir))}",
            candidates,
            key=state.IMPORT_CHOICE,
            placeholder="No GeoTIFF in the import folder" if not candidates else "Choose a file",
        )
        st.text_input(
            "…or a path inside the import folder",
            key=state.IMPORT_PATH,
            placeholder="e.g. city/ortho_2024.tif",
        )
        st.button("Import scene", key="add-import", type="primary", on_click=_add_import)
        _sticky_error(state.IMPORT_ERROR, _chosen_import())

    with st.container(border=True):
        st.markdown("**From a URL**")
        if not settings.remote_allow:
            st.caption("Off: the operator enables remote scenes with SCENESEEK_REMOTE_ALLOW.")
        else:
            url_col, asset_col = st.columns([3, 1])
            url_col.text_input(
                "COG or STAC item URL",
                key=state.REMOTE_URL,
                placeholder="https://… .tif, s3://bucket/… .tif, or a STAC item …json",
                help="Allowed hosts: " + ", ".join(settings.remote_allow),
            )
            asset_col.text_input("STAC asset", key=state.REMOTE_ASSET, placeholder="e.g. visual")
            st.button("Add from URL", key="add-remote", type="primary", on_click=_add_remote)
            _sticky_error(state.REMOTE_ERROR, st.session_state[state.REMOTE_URL].strip())

    with st.expander("Tiling options"):
        size_col, overlap_col, valid_col = st.columns(3)
        size_col.multiselect(
            "Tile sizes (px)",
            SIZE_CHOICES,
            key=state.TILE_SIZES,
            help="Several sizes find both small objects and large areas.",
        )
        overlap_col.slider("Overlap", 0.0, 0.75, step=0.25, key=state.OVERLAP)
        valid_col.slider("Minimum valid area", 0.0, 1.0, step=0.05, key=state.MIN_VALID)


st.title("Library")
if auth.can("add_scene"):
    st.caption(
        "Add a georeferenced GeoTIFF: it is tiled, embedded with the active model and indexed "
        "in the background. You can leave this page or close the tab meanwhile."
    )
    _add_scenes()
else:
    st.caption("The scenes you can search. Editors add, re-index and delete them.")

_live()
