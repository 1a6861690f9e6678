"""Loopback fakes of the exchanges' websocket and REST endpoints for ingest tests."""
