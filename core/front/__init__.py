"""The front: a small authenticating reverse proxy that stands before Streamlit.

Streamlit stores an upload from any connected session, signed in or not, and keeps it in
memory. ``python -m core front`` listens on the public address, starts Streamlit on a private
loopback port, refuses uploads and media to clients without a valid session cookie, bounds
uploads per session, and passes everything else (HTTP and the WebSocket) through. Importing
this package stays cheap: the proxy and its dependencies load in ``proxy`` and ``launch``.
"""
