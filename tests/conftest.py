"""Shared fixtures: paths to the real micrographs kept in the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real"
EXAMPLES = REPO / "example_images"


@pytest.fixture(scope="session")
def real_dir() -> Path:
    return REAL


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES
