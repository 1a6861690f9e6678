"""Shared test helpers: where the team's shared/ folder is."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """shared/ beside the checkout (CI and developers), or $PURPLEFLEA_SHARED."""
    configured = os.environ.get("PURPLEFLEA_SHARED")
    path = Path(configured) if configured else REPO.parent / "shared"
    if not (path / "fixtures" / "exchanges").is_dir():
        raise RuntimeError(
            f"shared fixtures not found at {path}; the tests need the team's shared/ folder "
            "beside the checkout (or PURPLEFLEA_SHARED pointing at it)"
        )
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()
