"""SceneSeek analyst app: ``streamlit run app/Home.py``.

The entry point is the shared frame: page config, session defaults, the sidebar and the
navigation. Pages live in ``app/views``; add one by adding it to ``VIEWS`` (the Fine-tune
page goes in a "Model" section). ``auth.gate`` comes first: while nobody is signed in, every
page's URL shows the sign-in form and no view's script runs.
"""

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from streamlit.navigation.page import StreamlitPage  # noqa: E402

from app import auth, frame, state  # noqa: E402

st.set_page_config(
    page_title="SceneSeek", page_icon=str(ROOT / "app" / "static" / "favicon.png"), layout="wide"
)
state.init()

VIEWS = {  # section: (script in app/views, title, icon); the first view is the default page
    "Scenes": [
        ("library", "Library", ":material/photo_library:"),
        ("search", "Search", ":material/travel_explore:"),
        ("change", "Change", ":material/compare:"),
    ],
    "Model": [("finetune", "Fine-tune", ":material/model_training:")],
}


def pages(stand_in: Callable[[], None] | None = None) -> dict[str, list[StreamlitPage]]:
    """Every view as a page at its own URL, whose page hash ``stand_in`` pages share.

    While nobody is signed in ``stand_in`` runs instead of the views' scripts; sharing the
    hash keeps the browser on the same page across a sign-in or sign-out.
    """
    first = VIEWS["Scenes"][0][0]
    return {
        section: [
            st.Page(
                stand_in or f"views/{view}.py",
                title=title,
                icon=icon,
                url_path=view,
                default=view == first,
            )
            for view, title, icon in views
        ]
        for section, views in VIEWS.items()
    }


user = auth.gate(pages(auth.signed_out_page))  # until someone signs in, every URL: the form
if user is not None:
    page = st.navigation(pages())
    frame.check_config()
    frame.sidebar(user)
    page.run()
