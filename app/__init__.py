"""SceneSeek's Streamlit app: pages call ``core`` and ``tiles``; no model logic lives here."""
