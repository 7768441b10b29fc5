"""Headless Chromium for the dashboard tests, driven by Selenium through the Debian chromedriver.

Only the system's `chromium` and `chromedriver` are used (selenium-manager never downloads anything),
with the flags this machine needs: no sandbox, no GPU, no background networking, a fresh profile.
Without them the tests skip, except under CI=true, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from selenium import webdriver

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1")


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    return None


def require_browser() -> tuple[str, str]:
    """The chromium and chromedriver paths; skips (or fails under CI=true) when either is missing."""
    chromium = _find("chromium", "chromium-browser")
    driver = _find("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = "the dashboard's browser tests need Debian's chromium and chromium-driver (scripts/test.sh installs them)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def chrome(profile: Path, width: int = 1280, height: int = 800) -> Iterator[webdriver.Chrome]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        browser.set_page_load_timeout(30)
        yield browser
    finally:
        browser.quit()
