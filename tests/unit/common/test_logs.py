from __future__ import annotations

import pytest

from common.logs import adopt_request_id


@pytest.mark.parametrize("given", ["req_01JD", "a", "x" * 128, "trace:7f-00/ok"])
def test_a_well_formed_request_id_is_kept(given: str) -> None:
    assert adopt_request_id(given) == given


@pytest.mark.parametrize("given", [None, "", "x" * 129, "has a space", "line\n", "tab\t", "é"])
def test_any_other_request_id_is_replaced(given: str | None) -> None:
    made = adopt_request_id(given)
    assert made != given
    assert made.startswith("req_")
