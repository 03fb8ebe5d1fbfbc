"""SceneSeek analyst app: ``streamlit run app/Home.py``.

The entry point is the shared frame: page config, session defaults, the sidebar and the
navigation. Pages live in ``app/views``; add one by adding an ``st.Page`` to ``PAGES``
(the Fine-tune page goes in a "Model" section). ``auth.gate`` comes first: while nobody is
signed in, no page of ``PAGES`` is routable.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from app import auth, frame, state  # noqa: E402

st.set_page_config(
    page_title="SceneSeek", page_icon=str(ROOT / "app" / "static" / "favicon.png"), layout="wide"
)
state.init()

PAGES = {
    "Scenes": [
        st.Page("views/library.py", title="Library", icon=":material/photo_library:", default=True),
        st.Page("views/search.py", title="Search", icon=":material/travel_explore:"),
        st.Page("views/change.py", title="Change", icon=":material/compare:"),
    ],
    "Model": [
        st.Page("views/finetune.py", title="Fine-tune", icon=":material/model_training:"),
    ],
}

user = auth.gate()  # until someone signs in, the sign-in form is the only page
if user is not None:
    page = st.navigation(PAGES)
    frame.check_config()
    frame.sidebar(user)
    page.run()
