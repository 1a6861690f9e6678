"""The commands' tests run against tests/server's in-process tracker."""

from tests.server.conftest import live

__all__ = ["live"]
