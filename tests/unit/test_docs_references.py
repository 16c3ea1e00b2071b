"""Every reference to the documentation leads somewhere.

Code, tests, comments, YAML and Markdown cite the reference in one form, a repository path with an
optional heading anchor — `docs/rest-api.md#idempotency`, `README.md#the-tree` — and every such
reference must name a file that exists and a heading that file has. Markdown files' own relative
links are held to the same rule. A section sign before a number cites a document by its section
numbers, which only RFCs here may do: the project's own documents are cited by file and anchor.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.markdown import anchors_of, broken_links

# `docs/<file>.md`, `bench/README.md` or `README.md`, from the repository's root, with an optional
# `#anchor`; not part of a longer path (`deploy/tools/README.md` is another file).
REFERENCE = re.compile(r"(?<![\w/.-])((?:docs|bench)/[\w.-]+\.md|README\.md)(?:#([\w-]+))?")
# A section sign before a number (also as JSON escapes it); an RFC's section is cited so too.
_SIGN = r"(?:\u00a7|\\u00a7)"
SECTION_NUMBER = re.compile(_SIGN + r"\s*\d")
_RFC_SECTION = re.compile(r"RFC \d+ " + _SIGN + r"\s*\d")


@dataclass(frozen=True)
class Found:
    path: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def tracked_text_files(root: Path) -> dict[str, str]:
    """Every file git tracks under `root` that is text (UTF-8, no NUL byte), by its path."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    files: dict[str, str] = {}
    for name in listed.decode().split("\0"):
        path = root / name
        if not name or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            files[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return files


def broken_references(files: dict[str, str], root: Path) -> list[Found]:
    broken: list[Found] = []
    anchors: dict[Path, set[str]] = {}
    for name, text in files.items():
        for number, line in enumerate(text.splitlines(), start=1):
            for match in REFERENCE.finditer(line):
                target, anchor = root / match.group(1), match.group(2)
                if not target.is_file():
                    broken.append(Found(name, number, match.group(0)))
                elif anchor is not None:
                    if target not in anchors:
                        anchors[target] = anchors_of(target)
                    if anchor not in anchors[target]:
                        broken.append(Found(name, number, match.group(0)))
    return broken


def section_numbers(files: dict[str, str]) -> list[Found]:
    found: list[Found] = []
    for name, text in files.items():
        for number, line in enumerate(text.splitlines(), start=1):
            if SECTION_NUMBER.search(_RFC_SECTION.sub("", line)):
                found.append(Found(name, number, line.strip()))
    return found


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return tracked_text_files(ROOT)


def test_every_reference_names_a_file_and_a_heading_that_exist(files: dict[str, str]) -> None:
    broken = broken_references(files, ROOT)
    assert not broken, "references that lead nowhere:\n" + "\n".join(map(str, broken))


def test_the_code_cites_the_documentation(files: dict[str, str]) -> None:
    """So that the check above checks something: the services' code cites docs/ sections."""
    cited = [
        match
        for name, text in files.items()
        if name.startswith(("common/", "gateway/", "order_service/", "payment_service/", "protos/"))
        for match in REFERENCE.finditer(text)
        if match.group(2)
    ]
    assert len(cited) >= 20


def test_no_document_is_cited_by_section_numbers(files: dict[str, str]) -> None:
    found = section_numbers(files)
    assert not found, "cite docs/<file>.md#<anchor> instead:\n" + "\n".join(map(str, found))


def test_every_markdown_link_leads_somewhere(files: dict[str, str]) -> None:
    broken = {name: broken_links(ROOT / name) for name in files if name.endswith(".md")}
    assert not {name: links for name, links in broken.items() if links}


# The checks themselves, on a repository made here: each must be able to fail. (Its paths are
# spelt with D, so that the references of this file are not taken for the repository's own.)
D = "docs"


def _repository(tmp_path: Path) -> Path:
    (tmp_path / D).mkdir()
    (tmp_path / D / "api.md").write_text("# The API\n\n## Idempotency\n\n```sh\n# not a heading\n```\n")
    return tmp_path


def test_a_missing_anchor_or_file_is_reported(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    files = {
        "a.py": f"# see {D}/api.md#idempotency and {D}/api.md#the-api\n",
        "b.py": f"# see {D}/api.md#retries\n",
        "c.yaml": f"# see {D}/gone.md#idempotency\n",
        "d.py": f"# see {D}/api.md#not-a-heading\n",
    }
    assert [str(f) for f in broken_references(files, root)] == [
        f"b.py:1: {D}/api.md#retries",
        f"c.yaml:1: {D}/gone.md#idempotency",
        f"d.py:1: {D}/api.md#not-a-heading",
    ]


def test_section_numbers_are_reported_except_an_rfcs() -> None:
    sign, escaped = "\u00a7", "\\u00" + "a7"  # spelt so that this file does not cite anything
    files = {
        "a.py": f"HEAD as GET (RFC 9110 {sign}9.3.2)\n",
        "b.py": f"the limits of the spec {sign}3\n",
        "c.json": f'{{"description": "see {escaped}12"}}\n',
    }
    assert [(f.path, f.line) for f in section_numbers(files)] == [("b.py", 1), ("c.json", 1)]


def test_a_markdown_link_to_a_missing_heading_is_reported(tmp_path: Path) -> None:
    root = _repository(tmp_path)
    readme = root / "README.md"
    readme.write_text(f"[ok]({D}/api.md#idempotency) [top](#guide) [bad]({D}/api.md#retries) [gone](x.md)\n# Guide\n")
    assert broken_links(readme) == [f"{D}/api.md#retries", "x.md"]
