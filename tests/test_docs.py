"""The README and docs stay true: links resolve, named files exist, no work-history references."""
from __future__ import annotations

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "tests" / "README.md",
        ROOT / "docker" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("robot_stack/", "config/", "launch/", "policies/", "benchmarks/", "docs/", "docker/", "tests/", "tools/", "msg/")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(doc):
    for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        assert file.exists(), f"{doc.name}: link to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
            assert anchor in {_slug(h) for h in headings}, f"{doc.name}: no heading for #{anchor} in {file.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_named_in_the_docs_exist(doc):
    """A path in backticks such as `robot_stack/rl/labelling.py` must exist, so a moved module
    cannot leave the docs pointing at nothing."""
    for token in re.findall(r"`([^`\s]+)`", doc.read_text()):
        token = token.rstrip(".,:;)")
        if token.startswith(TOP) and not re.search(r"[<>*{]|-v\d+$", token):  # not templates or Gymnasium ids
            assert (ROOT / token).exists(), f"{doc.name} names `{token}`, which does not exist"


def test_no_references_to_work_history_or_files_outside_the_repository():
    pattern = re.compile(r"\b[Ii]ssues? #?[0-9]+\b|PLATFORM\.md|\.\./shared/")
    files = [*DOCS, *(ROOT / "robot_stack").rglob("*.py"), *(ROOT / "config").glob("*"), *(ROOT / "launch").glob("*")]
    hits = [f"{f.relative_to(ROOT)}:{i}: {line.strip()}" for f in files if f.is_file()
            for i, line in enumerate(f.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "\n".join(hits)


def test_readme_is_a_short_guide():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    for section in ("Two commands", "How data flows", "Nodes and topics", "On the real robot", "Extending", "Results"):
        assert f"## {section}" in text
    assert "make sim" in text and "make test" in text and "benchmarks/README.md" in text
