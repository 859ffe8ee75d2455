"""`pipeline-platform ui` on free ports, and a headless Chromium to look at it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.dagster_ui import CHROMIUM, RunningUi, UiNotReady, launch_chromium, start_ui


@pytest.fixture(scope="module")
def running_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUi]:
    """`pipeline-platform ui` for the module; stopped (and its group killed) afterwards."""
    try:
        ui = start_ui(tmp_path_factory.mktemp("ui"))
    except UiNotReady as error:
        pytest.fail(str(error))
    try:
        yield ui
    finally:
        try:
            ui.stop()
        except subprocess.TimeoutExpired:
            ui.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (no downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (install the Debian package: apt-get install chromium)")

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
