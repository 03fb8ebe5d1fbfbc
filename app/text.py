"""Showing text that came from outside (file names, paths, error messages) as plain text."""

from __future__ import annotations

import re

# Everything Markdown, Streamlit's colour/icon directives (":red[...]") and LaTeX ("$") read.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: str) -> str:
    """Escape ``text`` for ``st.markdown``-rendered elements (alerts, captions, labels)."""
    return _SPECIAL.sub(r"\\\1", text)
