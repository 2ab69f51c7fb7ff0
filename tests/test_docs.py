"""The documentation's examples run, and the facts they assert hold.

Every block fenced with ```` ```python ```` in ``docs/*.md`` is a complete program. Each
one is compiled with the page's path and line numbers, so a traceback points into the
Markdown, and executed in a fresh module of its own, inside a fresh copy of the context
variables. A block passes when it finishes without raising. Fragments that are not meant
to run are fenced with ```` ```py ```` instead.

A test's id is ``<page>:<n>``: the *n*-th executed block of the page, counting from 1.
"""

from __future__ import annotations

import contextvars
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import resilient.instrumentation

if TYPE_CHECKING:
    from collections.abc import Iterator

DOCS = Path(__file__).resolve().parent.parent / "docs"

# An opening or closing fence: up to three spaces of indent, then ``` or ~~~ (or longer).
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<marks>`{3,}|~{3,})(?P<info>.*)$")

# Info strings a fenced block may carry. Anything else (```Python, ```python3, say)
# is most likely a typo that would silently leave an example untested.
KNOWN_LANGUAGES = frozenset({"python", "py", "sh", "console", "text", "toml", "yaml", "mermaid"})


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    language: str
    line: int  # the line of the block's first line of code, counting from 1
    code: str

    def compile(self) -> types.CodeType:
        # Blank lines in front keep the line numbers those of the Markdown file.
        return compile("\n" * (self.line - 1) + self.code, str(self.page), "exec")


def parse_blocks(text: str, page: Path) -> Iterator[Block]:
    """The fenced code blocks of *text*, the content of *page* (CommonMark's rules, simplified)."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        i += 1
        if opening is None:
            continue
        marks, indent = opening["marks"], len(opening["indent"])
        info = opening["info"].split()
        start, body = i, []
        while i < len(lines):
            line = lines[i]
            i += 1
            closing = FENCE.match(line)
            if (
                closing is not None
                and closing["marks"][0] == marks[0]
                and len(closing["marks"]) >= len(marks)
                and not closing["info"].strip()
            ):
                break
            # Content loses up to the opening fence's indent, as CommonMark says.
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
        yield Block(page, info[0] if info else "", start + 1, "\n".join(body) + "\n")


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of the Markdown file *page*, in order."""
    return list(parse_blocks(page.read_text(encoding="utf-8"), page))


def executed_blocks() -> list[object]:
    params: list[object] = []
    for page in sorted(DOCS.glob("*.md")):
        python = [block for block in fenced_blocks(page) if block.language == "python"]
        params.extend(
            pytest.param(block, id=f"{page.name}:{n}") for n, block in enumerate(python, start=1)
        )
    return params


@pytest.fixture(autouse=True)
def _restore_hooks() -> Iterator[None]:
    """A block may install hooks; put back the ones installed before it ran."""
    before = resilient.instrumentation.get_hooks()
    yield
    resilient.instrumentation.set_hooks(before)


@pytest.mark.parametrize("block", executed_blocks())
def test_example_runs(block: Block) -> None:
    """The block runs to the end in a module of its own; its asserts hold."""
    name = f"docs_example_{block.page.stem.replace('-', '_')}_{block.line}"
    module = types.ModuleType(name)
    module.__file__ = str(block.page)
    # Registered while it runs, as an imported module would be: dataclasses and
    # typing look a class's module up in sys.modules.
    sys.modules[name] = module
    try:
        contextvars.copy_context().run(exec, block.compile(), module.__dict__)
    finally:
        del sys.modules[name]


def test_every_page_has_examples() -> None:
    """The pages exist and the collector finds their examples (nothing is skipped silently)."""
    pages = {page.name for page in DOCS.glob("*.md")}
    expected = {
        "index.md",
        "getting-started.md",
        "timeout.md",
        "retry.md",
        "backoff.md",
        "budget.md",
    }
    assert expected <= pages
    for name in expected:
        languages = [block.language for block in fenced_blocks(DOCS / name)]
        assert "python" in languages, f"{name} has no executed example"


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda page: page.name)
def test_fences_name_a_known_language(page: Path) -> None:
    """Every fence says what it holds, in a spelling this module knows."""
    unknown = [
        f"{page.name}:{block.line - 1}: {block.language!r}"
        for block in fenced_blocks(page)
        if block.language not in KNOWN_LANGUAGES
    ]
    assert not unknown, "unknown fence languages (use python to run, py not to):\n" + "\n".join(
        unknown
    )


def test_collector_reads_fences_as_commonmark_does() -> None:
    """Languages, line numbers, indented fences, and a longer fence around a shorter one."""
    text = (
        "# Page\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "\n"
        "- item\n"
        "  ```py\n"
        "  y = 2\n"
        "  ```\n"
        '````python title="fences"\n'
        "```\n"
        "````\n"
    )
    blocks = list(parse_blocks(text, DOCS / "page.md"))
    assert [(b.language, b.line, b.code) for b in blocks] == [
        ("python", 3, "x = 1\n"),
        ("py", 8, "y = 2\n"),
        ("python", 11, "```\n"),
    ]


def test_a_failing_example_points_at_its_markdown_line() -> None:
    block = Block(DOCS / "page.md", "python", 20, "x = 1\n1 / 0\n")
    with pytest.raises(ZeroDivisionError) as info:
        exec(block.compile(), {})  # noqa: S102 -- running examples is the point
    assert info.traceback[-1].lineno + 1 == 21
    assert Path(info.traceback[-1].path) == DOCS / "page.md"
