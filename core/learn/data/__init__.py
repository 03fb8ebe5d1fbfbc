"""Caption datasets, image decoding and torch datasets for AMFMN training and evaluation.

Kept import-free so ``core.learn.data.captions`` stays usable without torch; import the
submodules directly.
"""
