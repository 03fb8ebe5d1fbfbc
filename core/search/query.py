"""Turn what an analyst typed into something the model can encode, or say why not.

A dropped example image is read by ``core.store.query_images``, the form its marks keep.
"""

from __future__ import annotations

import re

from core.errors import QueryError
from core.store.mark_rules import MAX_TEXT_CHARS

MAX_QUERY_CHARS = MAX_TEXT_CHARS  # a longer query could not be kept with its marks


def clean_text_query(text: str) -> str:
    """Validate a text query and collapse its whitespace.

    Raises:
        QueryError: when it is empty, has no letters or digits, or is unreasonably long.
    """
    if text is None or not text.strip():
        raise QueryError("the query is empty: describe what to look for, e.g. 'a baseball field'")
    collapsed = " ".join(text.split())
    if len(collapsed) > MAX_QUERY_CHARS:
        over = len(collapsed) - MAX_QUERY_CHARS
        raise QueryError(
            f"the query is {len(collapsed):,} characters long, {over:,} over the limit of "
            f"{MAX_QUERY_CHARS}: shorten it (a sentence describing one kind of place works best)"
        )
    if not re.search(r"\w", collapsed):
        raise QueryError("the query has no words: describe what to look for in words")
    return collapsed
