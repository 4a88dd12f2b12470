"""The documents a newcomer reads point only at files that are in the repository.

README.md, every Markdown file under docs/ and the other READMEs link to each other and
to source files with relative links; a page moved or renamed without its links leaves a
reader at a 404 on GitHub and, under docs/pages/, fails ``mkdocs build --strict`` in CI.
This test catches it without mkdocs, for every document, including those outside the site.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

# [text](target) and ![alt](target), with an optional "title"; reference-style links too.
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")


def _documents() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    docs += [ROOT / "helm" / "README.md", ROOT / "loadtests" / "README.md"]
    return [p for p in docs if p.is_file() and "build" not in p.relative_to(ROOT).parts]


def _links(text: str) -> list[str]:
    text = FENCE.sub("", text)
    text = CODE_SPAN.sub("", text)
    return INLINE.findall(text) + REFERENCE.findall(text)


def _is_relative(target: str) -> bool:
    return not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) and not target.startswith(("#", "/"))


@pytest.mark.parametrize("doc", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_in_the_repository(doc: Path) -> None:
    broken = []
    for target in _links(doc.read_text(encoding="utf-8")):
        if not _is_relative(target):
            continue
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not path:
            continue
        resolved = (doc.parent / path).resolve()
        if not resolved.exists() or ROOT not in resolved.parents:
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to files not in the repository: {broken}"


def test_the_link_check_sees_links_and_refuses_a_missing_target(tmp_path: Path) -> None:
    text = (
        "see [a](present.md) and ![img](img/missing.png) but not `[x](code.md)`\n"
        "```\n[y](fenced.md)\n```\n[ref]: other.md\n[web](https://example.com) [top](#top)\n"
    )
    assert _links(text) == [
        "present.md",
        "img/missing.png",
        "https://example.com",
        "#top",
        "other.md",
    ]
    assert [t for t in _links(text) if _is_relative(t)] == [
        "present.md",
        "img/missing.png",
        "other.md",
    ]


def test_the_readme_is_for_users_and_at_most_12_kb() -> None:
    readme = (ROOT / "README.md").read_bytes()
    assert len(readme) <= 12 * 1024, f"README.md is {len(readme)} bytes"
    text = readme.decode()
    assert "uv run gateway serve --sandbox" in text
    assert "uv run pytest" in text


def test_every_site_page_is_in_the_documentation_tree() -> None:
    pages = ROOT / "docs" / "pages"
    assert (pages / "index.md").is_file()
    nav = (ROOT / "docs" / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [
        str(p.relative_to(pages))
        for p in sorted(pages.rglob("*.md"))
        if str(p.relative_to(pages)) not in nav
    ]
    assert not missing, f"pages not in docs/mkdocs.yml's nav: {missing}"
