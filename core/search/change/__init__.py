"""Change search: what is new, or gone, between two dates of the same place.

``align`` embeds the earlier scene once more on the later scene's tile grid (warped onto
it) and keeps those vectors with the pair; ``score`` turns the two dates' vectors into a
change score per tile; ``pair`` loads a pair for search; ``query`` ranks its tiles by change
or by a text or image query scored on the later date minus the earlier one.
"""
