"""What ``make docs`` checks in the built site, beyond what ``mkdocs build --strict`` does:
no page shows a Sphinx role (``:class:`X```, ``:meth:``, ``:func:``, ``:attr:``...) as
text.

mkdocstrings reads docstrings as Markdown, so a role written in one reaches the reference
pages with its colons visible. A docstring names a public object with an autorefs link,
``[`JobStatusWaiter`][cdm_status.JobStatusWaiter]`` (which the strict build resolves), and
anything else with a code span. Code blocks and code spans are not looked at: a role shown
as code is meant.

``python -m tests.support.check_site SITE_DIR`` from the repository's root.
"""

from __future__ import annotations

import re
import sys
from bisect import bisect_right
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|data|attr|exc|mod|obj|const|ref|term|doc|any):`")
"""A role in a page's text, where a code span is written between backquotes again."""

HIDDEN = frozenset({"pre", "script", "style"})


@dataclass(frozen=True, slots=True)
class Role:
    page: str
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: Sphinx role shown as text: {self.text}"


class _Text(HTMLParser):
    """A page's text as a reader sees it, each code span between backquotes (as its
    Markdown was written), code blocks left out; where each piece comes from in the HTML,
    and which parts are code."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self.lines: list[tuple[int, int]] = []  # (offset in text, line in the HTML)
        self.code: list[tuple[int, int]] = []  # [start, end) of each code span in text
        self._hidden = 0
        self._code_start: int | None = None

    def _add(self, piece: str) -> None:
        self.lines.append((len(self.text), self.getpos()[0]))
        self.text += piece

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN:
            self._hidden += 1
        elif tag == "code" and not self._hidden and self._code_start is None:
            self._code_start = len(self.text)
            self._add("`")

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN:
            self._hidden = max(0, self._hidden - 1)
            if not self._hidden:
                self._add(" ")
        elif tag == "code" and self._code_start is not None:
            self._add("`")
            self.code.append((self._code_start, len(self.text)))
            self._code_start = None

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self._add(data)


def roles_in(page: Path, name: str) -> list[Role]:
    """The roles shown as text on one page (``name``: how the report names it)."""
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    text = parser.text
    found = []
    for match in ROLE.finditer(text):
        at = match.start()
        if any(start <= at < end for start, end in parser.code):
            continue  # shown as code on purpose
        offset, line = parser.lines[bisect_right(parser.lines, (at, sys.maxsize)) - 1]
        line += text.count("\n", offset, at)
        context = " ".join(text[max(0, at - 50) : match.end() + 40].split())
        found.append(Role(name, line, context))
    return found


def sphinx_roles(site: Path) -> list[Role]:
    """Every Sphinx role shown as text on the HTML pages under ``site``."""
    return [
        role
        for page in sorted(site.rglob("*.html"))
        for role in roles_in(page, page.relative_to(site).as_posix())
    ]


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m tests.support.check_site SITE_DIR", file=sys.stderr)
        return 2
    site = Path(argv[0])
    if not any(site.rglob("*.html")):
        print(f"check_site: no HTML page under {site}", file=sys.stderr)
        return 1
    roles = sphinx_roles(site)
    for role in roles:
        print(role, file=sys.stderr)
    if roles:
        print(
            f"check_site: {len(roles)} Sphinx role(s) on the site: write "
            "[`Name`][cdm_status.Name] for a public object, ``name`` otherwise",
            file=sys.stderr,
        )
    return 1 if roles else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
