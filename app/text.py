"""Showing text that came from outside (file names, paths, error messages) as plain text."""

from __future__ import annotations

import html
import re

# Everything Markdown, Streamlit's colour/icon directives (":red[...]") and LaTeX ("$") read.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md(text: str) -> str:
    """Escape ``text`` for ``st.markdown``-rendered elements (alerts, captions, labels)."""
    return _SPECIAL.sub(r"\\\1", text)


def plural(count: int, word: str, words: str = "") -> str:
    """``1 hit``, ``2 hits``, ``1,200 tiles``: a count with its noun in the right number.

    ``words`` is the plural where it is not ``word`` + s ("mark or caption", "marks and ...").
    """
    return f"{count:,} {word if count == 1 else words or word + 's'}"


def agree(count: int, one: str, many: str) -> str:
    """The verb or pronoun that agrees with ``count``: ``agree(1, "is", "are")`` is ``is``."""
    return one if count == 1 else many


def breakable(name: str) -> str:
    """A name as HTML (escaped) that wraps after ``_``, ``-`` or ``.``, never mid-word."""
    return re.sub(r"([_.-])", r"\1<wbr>", html.escape(name))


def name_cell(name: str) -> str:
    """A name for a narrow table cell: wraps between its words, inside one only if it must."""
    return f"<div style='overflow-wrap: anywhere'>{breakable(name)}</div>"
