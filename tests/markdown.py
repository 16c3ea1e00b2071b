"""Reading the repository's Markdown as GitHub renders it: the anchors its headings get, and its
links. Used by the tests that keep the README's and docs/'s links, and the code's references to
docs/ sections, pointing somewhere."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_INLINE_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# A Markdown link's target: `[text](target)`, the target without spaces.
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading's text: links reduced to their text, lower case, everything
    but letters, digits, `_`, `-` and spaces dropped, spaces to hyphens."""
    text = _INLINE_LINK.sub(r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(text: str) -> list[str]:
    """The text of every ATX heading outside fenced code blocks (a `# comment` in a shell block
    is not a heading)."""
    found: list[str] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)):
            found.append(match.group(2))
    return found


def anchors(text: str) -> set[str]:
    """Every anchor the document's headings get; a repeated heading gets `-1`, `-2`, … as on GitHub."""
    seen: Counter[str] = Counter()
    result: set[str] = set()
    for heading in headings(text):
        base = slug(heading)
        result.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return result


def anchors_of(path: Path) -> set[str]:
    return anchors(path.read_text(encoding="utf-8"))


def broken_links(document: Path) -> list[str]:
    """The relative links of a Markdown file that lead nowhere: to a file that does not exist, or
    to an anchor that its target has no heading for. Links to other sites are not followed."""
    text = document.read_text(encoding="utf-8")
    broken: list[str] = []
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (document.parent / path).resolve() if path else document
        if not file.exists() or (anchor and (file.suffix != ".md" or anchor not in anchors_of(file))):
            broken.append(target)
    return broken
