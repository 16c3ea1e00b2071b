"""The README stays a guide: its first screen says how to run and test, it is short and links every
page of docs/, it carries no benchmark figures (they are in bench/results/latest.md, as
bench/report.py writes it), and its links lead somewhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import report
from tests.harness import ROOT
from tests.markdown import broken_links

README = ROOT / "README.md"
BENCH_README = ROOT / "bench" / "README.md"
RESULTS = ROOT / "bench" / "results"
# What a terminal shows before one scrolls.
FIRST_SCREEN_LINES = 24
# The README is a guide: the reference is in docs/.
MAX_LINES = 350


def test_the_first_screen_says_make_run_and_make_test() -> None:
    first_screen = "\n".join(README.read_text(encoding="utf-8").splitlines()[:FIRST_SCREEN_LINES])
    assert "make run" in first_screen
    assert "make test" in first_screen


def test_the_readme_links_the_figures_instead_of_holding_them() -> None:
    text = README.read_text(encoding="utf-8")
    assert "(bench/results/latest.md)" in text
    # The tables' rows ("small · c=32 · grpc", "sse · 1000 watching") and goal verdicts.
    assert not re.search(r"^\|[^|\n]*( · c=\d+| watching)", text, re.MULTILINE)
    assert "| MISSED |" not in text
    assert "](bench/results/" not in text.replace("(bench/results/latest.md)", "")  # no plots either


def test_latest_md_is_what_the_report_makes_of_latest_json() -> None:
    results = json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))
    assert (RESULTS / "latest.md").read_text(encoding="utf-8") == report.markdown(results)


def test_the_findings_name_the_run_they_read() -> None:
    started = json.loads((RESULTS / "latest.json").read_text(encoding="utf-8"))["started_at"]
    assert f"## What the numbers say (the run started {started})" in BENCH_README.read_text(encoding="utf-8")


def test_the_readme_is_a_guide_that_leads_into_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_LINES
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)", text))
    assert linked == {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}


@pytest.mark.parametrize("document", [README, BENCH_README], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(document: Path) -> None:
    assert broken_links(document) == []
