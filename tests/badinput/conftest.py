"""The bad-input suite runs against a stack of its own: it opens thousands of connections and
keeps clients that never read, which must not disturb the integration tests' shared stack."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from tests.harness import ApiKeys, Stack, new_key

# The secret key of the suite's stack: the raw HTTP requests of test_http_oddities.py are built
# at import time, before the stack exists.
BADINPUT_KEY = new_key()


@pytest.fixture(scope="package")
def bad_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Thousands of idle connections need as many descriptors here and in the gateway, which
    # inherits the limit: raise the soft limit to the hard one before the services start.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    with Stack(tmp_path_factory.mktemp("badinput"), keys=ApiKeys(secret=BADINPUT_KEY)) as running:
        yield running
    assert running.leaked_lines() == []
