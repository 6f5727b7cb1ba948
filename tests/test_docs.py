"""The README and docs/ as a reader meets them: a short front door that opens
with the two commands, links that lead somewhere, and no mention that only
makes sense inside the project's own history (work items, dated runs, commit
hashes, paths outside the repository)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
FRONT_DOOR_MAX_BYTES = 20 * 1024
COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -q . && sockdiag demo",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -q -e '.[test]' && pytest -q",
)

FENCED = re.compile(r"^( *)(```|~~~).*?^\1\2[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without its fenced code blocks."""
    return FENCED.sub("", text)


# What a page may not say anywhere (code blocks included), and what it may not
# say outside them (a hash-looking word inside a code block is usually data).
ANYWHERE = {
    "a work item": re.compile(r"\bissue \d+", re.I),
    "a path on the project's machine": re.compile(r"/work/|\.\./shared|\bshared/reference\b"),
    "a dated run": re.compile(r"\b20\d\d-\d\d-\d\d\b"),
    "a scratch script": re.compile(r"\bsnippet\.py\b"),
}
# 7 to 40 hex digits with at least one letter and one digit: what a commit
# hash looks like, and what no word of prose does.
COMMIT_HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_internal_mentions(page):
    text = page.read_text()
    found = [(what, m.group()) for what, pattern in ANYWHERE.items()
             for m in pattern.finditer(text)]
    found += [("a commit hash", m.group()) for m in COMMIT_HASH.finditer(prose(text))]
    assert found == []


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped,
    spaces to hyphens (duplicates numbered)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", prose(page.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # http:, https:, mailto:
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


def test_readme_is_a_front_door():
    data = README.read_bytes()
    assert len(data) <= FRONT_DOOR_MAX_BYTES
    first_block = re.search(r"```\w*\n(.*?)```", data.decode(), re.S).group(1)
    assert first_block.splitlines() == list(COMMANDS)
    # Only the title comes before the two commands.
    before = data.decode().split("```", 1)[0]
    assert [line for line in before.splitlines() if line.strip()] == ["# sockdiag"]


def test_no_example_writes_into_the_repository():
    """A command in the README or docs/ (in a code block or in running text)
    that writes a file (-o, --plot, --record, a redirection) writes it outside
    the repository's folders, and no example says it writes into them."""
    writes = re.compile(r"(?:\s-o|--output|--plot|--record|>)[\s=]+([^\s`]+)")
    said = re.compile(r"\bwrites?\s+(?:into\s+|to\s+)?`?([^\s`,;)]+)")
    folders = tuple(f"{entry.name}/" for entry in ROOT.iterdir()
                    if entry.is_dir() and not entry.name.startswith("."))
    inside = []
    for page in PAGES:
        text = page.read_text()
        commands = [line for block in FENCED.finditer(text) for line in block.group().splitlines()]
        commands += [" ".join(span.split()) for span in re.findall(r"`[^`]+`", prose(text))]
        for command in commands:
            if re.match(r"\s*(\$ )?(sudo )?(sockdiag|pytest|python3?) ", command.strip("`")):
                targets = writes.findall(command) + said.findall(command)
                inside += [(page.name, command.strip()) for target in targets
                           if target.removeprefix("./").startswith(folders)]
    assert inside == []


def test_architecture_names_every_room():
    """docs/architecture.md names every module of sockdiag/ (a new file is a
    new room, and the map must show it)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    package = ROOT / "sockdiag"
    missing = []
    for path in sorted(package.rglob("*.py")) + sorted(package.glob("*.pxi")):
        if path.name == "__init__.py" or path.parent.name == "includes":
            continue
        if path.parent.name == "lowat":
            continue  # one room, "lowat/"
        if not re.search(rf"(?<![\w.]){re.escape(path.stem)}\b", text):
            missing.append(path.relative_to(package).as_posix())
    assert missing == []
