"""pytest fixtures for the fake workspace.

Use them from a test module or a conftest with
``from tests.fakeworkspace.fixtures import fake_workspace`` or
``pytest_plugins = ["tests.fakeworkspace.fixtures"]``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from .server import FakeWorkspace


@pytest.fixture
def fake_workspace() -> Iterator[FakeWorkspace]:
    """A started FakeWorkspace with default identities, fresh for each test."""
    fw = FakeWorkspace()
    fw.start()
    try:
        yield fw
    finally:
        fw.stop()
