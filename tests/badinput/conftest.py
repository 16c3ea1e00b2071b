"""The bad-input suite runs against a stack of its own: it opens thousands of connections and
keeps clients that never read, which must not disturb the integration tests' shared stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import Stack


@pytest.fixture(scope="package")
def bad_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("badinput")).start()
    yield running
    running.stop()
