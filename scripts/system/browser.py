"""Headless Chromium (Debian's package) against the deployment's web UI: rendered DOM and screenshots."""

from __future__ import annotations

import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

#: Flags for a quiet, offline, sandbox-less headless run (root in a container).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--window-size=1600,1000",
)


class Browser:
    """
    One Chromium profile (so the UI's login cookie carries over between pages).

    :param chromium: the chromium executable.
    :param profile: a folder for the profile.
    :param budget_ms: virtual time each page gets to render (the React UI fetches its data first).
    """

    def __init__(self, chromium: str, profile: Path, budget_ms: int = 15000) -> None:
        self.chromium = chromium
        self.profile = profile
        self.budget_ms = budget_ms

    def _run(self, url: str, *extra: str) -> subprocess.CompletedProcess[bytes]:
        command = [
            self.chromium,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            f"--virtual-time-budget={self.budget_ms}",
            *extra,
            url,
        ]
        result = subprocess.run(command, capture_output=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(
                f"chromium exited {result.returncode} on {url}: {result.stderr.decode(errors='replace')[-1500:]}"
            )
        return result

    def dom(self, url: str) -> str:
        """The page's DOM after its scripts ran."""
        return self._run(url, "--dump-dom").stdout.decode(errors="replace")

    def screenshot(self, url: str, path: Path) -> tuple[int, int]:
        """Save a PNG of the page; return its width and height."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._run(url, f"--screenshot={path}")
        return png_size(path)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG (raises ValueError when the file is no PNG)."""
    header = path.read_bytes()[:24]
    if len(header) < 24 or header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.anchors: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.anchors.append(("".join(self._text).strip(), self._href))
            self._href = None


def anchors(html: str) -> list[tuple[str, str]]:
    """Every ``<a>`` of a page as (text, href), entities decoded."""
    parser = _Anchors()
    parser.feed(html)
    return parser.anchors
