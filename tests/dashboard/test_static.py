"""The page's files themselves: no inline script or style (the CSP forbids them), no HTML sinks for data."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from html.parser import HTMLParser

from dashboard.app import STATIC_DIR
from tests.conftest import ROOT


class InlineFinder(HTMLParser):
    """Collects what a strict CSP would block in a page: inline scripts, <style>, style= and on*= attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        self.inline += [f"{tag}[{name}]" for name in sorted(names) if name == "style" or name.startswith("on")]


def test_the_finder_sees_inline_code() -> None:
    finder = InlineFinder()
    finder.feed('<script>alert(1)</script><p style="x" onclick="y"></p><style></style><script src="/a.js"></script>')
    assert finder.inline == ["<script> without src", "p[onclick]", "p[style]", "<style>"]


def test_the_page_has_no_inline_script_or_style() -> None:
    finder = InlineFinder()
    finder.feed((STATIC_DIR / "index.html").read_text())
    assert finder.inline == []
    assert not list(STATIC_DIR.rglob("*.map"))  # and no build step left anything behind


def test_scripts_never_parse_data_as_html() -> None:
    # Every user string reaches the DOM through textContent; these sinks would parse it as markup.
    sinks = re.compile(r"\binnerHTML\b|\bouterHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function")
    scripts = list((STATIC_DIR / "js").glob("*.js"))
    assert len(scripts) >= 5
    assert [p.name for p in scripts if sinks.search(p.read_text())] == []
    # Only our own files are loaded: no CDN, so the page works offline.
    assert not re.search(r"(src|href)=\"(https?:)?//", (STATIC_DIR / "index.html").read_text())


def test_every_page_file_is_package_data() -> None:
    # A non-editable install (the Docker image) ships only what package-data names: a new kind of file under
    # static/ needs a pattern there, or the installed dashboard serves a page without it.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["dashboard"]
    package = STATIC_DIR.parent
    files = [p.relative_to(package).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert files and [f for f in files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in patterns)] == []
