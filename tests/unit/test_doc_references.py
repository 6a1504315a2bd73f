"""Text that names a file names one that exists: docs, docstrings and comments do not go stale
(they once cited a Faust notes file and a `docs/metrics.md` that were not in the repository)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGE = ROOT / "src" / "escalator"
TEXTS = sorted(
    [
        ROOT / "README.md",
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("deploy/**/*.md"),
        *PACKAGE.rglob("*.py"),
        *ROOT.glob("tests/**/*.py"),
        *ROOT.glob("benchmarks/*.py"),
    ]
)
TEXTS.remove(Path(__file__).resolve())
REPO_FILE_NAMES = {p.name for p in ROOT.rglob("*.md") if ".git" not in p.parts}
# A path from the repository root, or inside the package (`runtime/streams.py`).
ROOT_PATH = re.compile(
    r"(?<![\w/.-])((?:docs|tests|scripts|deploy|examples|schemas|benchmarks|src)/[\w./-]*\w)"
)
PACKAGE_PATH = re.compile(r"(?<![\w/.-])((?:domain|config|adapters|service|runtime)/\w+\.py)\b")
BARE_DOC = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
LINK = re.compile(r"\]\(([^)\s]+)\)")

# Known stale references in files another change is rewriting; each must still be stale here
# (remove the entry when the reference is fixed).
PENDING: dict[str, set[str]] = {}


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _exists(text_file: Path, name: str) -> bool:
    name = name.split("#")[0].rstrip(".")
    if not name:
        return True
    if "*" in name or "<" in name:
        return True
    return any((base / name).exists() for base in (ROOT, text_file.parent, PACKAGE, ROOT / "docs"))


def missing_references(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    names = set(ROOT_PATH.findall(text)) | set(PACKAGE_PATH.findall(text))
    names |= set(BARE_DOC.findall(text)) - REPO_FILE_NAMES  # a bare name: somewhere in the repo
    return {n for n in names if not _exists(path, n)}


@pytest.mark.parametrize("path", TEXTS, ids=_rel)
def test_named_files_exist(path: Path) -> None:
    missing = missing_references(path)
    pending = PENDING.get(_rel(path), set())
    assert missing == pending, f"{_rel(path)} names files that do not exist: {missing - pending}"


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {slug(line.lstrip("#")) for line in lines if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize(
    "path", [p for p in TEXTS if p.suffix == ".md"], ids=lambda p: _rel(p) if p else ""
)
def test_markdown_links_resolve(path: Path) -> None:
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        assert linked.exists(), f"{_rel(path)}: link to {target} does not resolve"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{_rel(path)}: no heading for #{anchor}"
