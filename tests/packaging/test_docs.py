"""The README stays a short front door, and the documentation's links and navigation hold.

The site itself is built by ``tox -e docs`` (``mkdocs build --strict``), not here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS = ROOT / "mkdocs.yml"

README_LIMIT = 12 * 1024  # bytes

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
INLINE_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # https:, mailto:, ...


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if not any(part.startswith("_") for part in p.parts))


#: ``<img src="...">`` in Markdown (the README's screenshots)
HTML_SOURCE = re.compile(r'<img\s[^>]*\bsrc="([^"]+)"')


def links(markdown: str) -> list[str]:
    """Every link target in ``markdown``, outside code blocks and code spans."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    return INLINE_LINK.findall(prose) + REFERENCE_DEFINITION.findall(prose) + HTML_SOURCE.findall(prose)


def nav_pages() -> set[str]:
    """The pages listed under ``nav:`` in mkdocs.yml (read as text: no YAML parser needed)."""
    text = MKDOCS.read_text(encoding="utf-8")
    match = re.search(r"^nav:\s*\n((?:[ \t]+.*\n|[ \t]*\n)+)", text, re.M)
    assert match, "mkdocs.yml has no nav"
    return set(re.findall(r"([\w./-]+\.md)\b", match.group(1)))


def test_links_are_found_outside_code():
    text = "[a](docs/a.md) `[b](b.md)` ![c](img.png)\n```\n[d](d.md)\n```\n[e]: e.md\n"
    assert links(text) == ["docs/a.md", "img.png", "e.md"]


def test_the_readme_is_a_short_front_door():
    size = len(README.read_bytes())
    assert size <= README_LIMIT, (
        f"README.md is {size} bytes; keep it at most {README_LIMIT} and move the detail to docs/"
    )


def test_the_docs_exist():
    assert MKDOCS.is_file()
    assert (DOCS / "index.md").is_file()
    assert len(pages()) >= 10


@pytest.mark.parametrize(
    "document", [README, *pages()], ids=lambda p: str(p.relative_to(ROOT)) if isinstance(p, Path) else p
)
def test_every_relative_link_leads_to_a_file(document):
    problems = []
    for target in links(document.read_text(encoding="utf-8")):
        if EXTERNAL.match(target):
            continue
        if "#" in target:
            problems.append(f"{target}: links to an anchor (anchors break when headings change)")
            continue
        if target.startswith("/"):
            problems.append(f"{target}: absolute path; use a path relative to {document.name}")
            continue
        if not (document.parent / target).resolve().is_file():
            problems.append(f"{target}: no such file")
    assert not problems, f"{document.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_navigation_lists_every_page():
    listed = nav_pages()
    present = {str(p.relative_to(DOCS)) for p in pages()}
    assert present - listed == set(), f"pages missing from mkdocs.yml's nav: {sorted(present - listed)}"
    assert listed - present == set(), f"mkdocs.yml's nav lists missing pages: {sorted(listed - present)}"
