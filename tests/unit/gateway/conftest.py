"""The fake order and payment services (tests/unit/gateway/fake_services.py), started once per
module that asks for them; `answers` is theirs, emptied for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.gateway.fake_services import Answers, Services, serve


@pytest.fixture(scope="module")
async def services() -> AsyncIterator[Services]:
    async for running in serve():
        yield running


@pytest.fixture
def answers(services: Services) -> Answers:
    return services.answers.reset()
