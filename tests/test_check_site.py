"""``make docs`` fails when a built page shows a Sphinx role as text, naming the page, the
line and the words around it (tests/support/check_site.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.check_site import main, sphinx_roles

# What mkdocstrings makes of a docstring's "auth is a :class:`TokenAuth` or any ``httpx.Auth``".
RENDERED_ROLE = """<html><body>
<h3 id="cdm_status.CDMClient">CDMClient</h3>
<div class="doc-contents">
<p><code>auth</code> is a :class:<code>TokenAuth</code> or any <code>httpx.Auth</code>.
Use it or call :meth:<code>aclose</code>.</p>
</div></body></html>
"""

# The same, written as the docstrings are now, and roles that are shown as code on purpose.
CLEAN = """<html><body>
<p><code>auth</code> is a <a class="autorefs autorefs-internal" title=":class:`x`"
href="#cdm_status.TokenAuth"><code>TokenAuth</code></a>; write
<code>[`X`][cdm_status.X]</code>, never <code>:class:`X`</code>.</p>
<pre><code>def f():
    \"\"\"Sphinx would say :func:`g`.\"\"\"
</code></pre>
<p>Times such as 12:30:45 and <code>redis://host:6379/0</code> are not roles.</p>
</body></html>
"""


def site(tmp_path: Path, pages: dict[str, str]) -> Path:
    for name, html in pages.items():
        page = tmp_path / name
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(html, encoding="utf-8")
    return tmp_path


def test_a_role_in_a_rendered_docstring_is_reported_with_its_page_line_and_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = site(tmp_path, {"index.html": CLEAN, "reference/api/index.html": RENDERED_ROLE})

    roles = sphinx_roles(built)

    assert [(role.page, role.line) for role in roles] == [
        ("reference/api/index.html", 4),
        ("reference/api/index.html", 5),
    ]
    assert "is a :class:`TokenAuth` or any `httpx.Auth`" in roles[0].text
    assert ":meth:`aclose`" in roles[1].text
    assert main([str(built)]) == 1
    report = capsys.readouterr().err
    assert "reference/api/index.html:4: Sphinx role shown as text:" in report
    assert "2 Sphinx role(s)" in report


def test_links_code_spans_and_code_blocks_pass(tmp_path: Path) -> None:
    built = site(tmp_path, {"index.html": CLEAN, "guides/cli/index.html": CLEAN})

    assert sphinx_roles(built) == []
    assert main([str(built)]) == 0


def test_a_site_without_pages_fails(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 1
    assert main([str(tmp_path / "missing")]) == 2
