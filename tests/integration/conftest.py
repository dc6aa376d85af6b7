"""Fixtures of the web page tests (tests/integration/test_web*.py): each module that asks for
`world` gets its own platform with the demo community (SQLite), and `browser` Debian's Chromium."""
from __future__ import annotations

import pytest

from tests.integration.web_world import CHROMIUM, CHROMIUM_ARGS, web_platform


@pytest.fixture(scope="module")
def world():
    """The module's own platform (SQLite) with the web pages and the demo community."""
    with web_platform("sqlite") as w:
        yield w


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, once per module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
