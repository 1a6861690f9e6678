"""The tracker server: ingest pipeline, HTTP API, WebSocket/SSE streams, accounts.

:func:`purpleflea.server.app.create_app` builds the ASGI application from a
:class:`~purpleflea.server.config.ServerConfig`.
"""
