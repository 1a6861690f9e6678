"""The sim command's tests meet a running tracker from tests/server's harness."""

from tests.server.conftest import live

__all__ = ["live"]
