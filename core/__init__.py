"""SceneSeek's engine: AMFMN retrieval, training, evaluation, embedding, index and search.

Importing ``core`` is cheap: torch-heavy modules are imported by the modules that need them.
"""

__version__ = "0.1.0"
