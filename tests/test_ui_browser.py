"""The web admin page in a real browser: Debian's Chromium driven through chromedriver (Selenium),
against a real `facegate run` process on 127.0.0.1 with the real models.

Skipped, with the reason, where Chromium, chromedriver or Selenium is missing (scripts/test installs
them when run as root, as CI does). Screenshots of every page go to FACEGATE_SCREENSHOTS (default: the
test's temporary directory).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from api_device_support import data_url
from conftest import FACES, NO_FACES
from daemon_support import Daemon

from daemon.services.tokens import ADMIN, TokenStore

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ADMIN_TOKEN = "ui-admin-token-0123456789abcdef"
XSS_NAME = '<img src=x onerror="window.__pwned=1">'

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "Chromium and chromedriver are not installed (scripts/test installs Debian's chromium and "
        "chromium-driver when run as root)",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ui")
    (tmp / "state").mkdir(mode=0o700)
    TokenStore(tmp / "state" / "tokens.json").add("admin", [ADMIN], token=ADMIN_TOKEN)
    proc = Daemon(tmp, {}, [])
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until the models are loaded
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as r:
                    if json.load(r)["status"] == "ok":
                        break
            except OSError:
                pass
            time.sleep(0.3)
        yield base
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = Path(os.environ.get("FACEGATE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 20):
    # A page re-renders its table after every change: an element read while it is being replaced is
    # stale, and the condition is simply asked again.
    retry = (StaleElementReferenceException,)
    return WebDriverWait(driver, timeout, ignored_exceptions=retry).until(condition)


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def sign_in(driver, base: str, token: str = ADMIN_TOKEN) -> None:
    driver.get(f"{base}/ui/")
    wait(driver, ec.url_contains("/ui/login"))
    field = driver.find_element(By.ID, "token")
    field.send_keys(token)
    field.submit()
    wait(driver, ec.text_to_be_present_in_element((By.ID, "status"), "ok"))


def api(base: str, method: str, path: str, body: dict | None = None, token: str = ADMIN_TOKEN) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def open_page(driver, name: str, ready_id: str) -> None:
    driver.get(driver.current_url.split("#")[0] + f"#/{name}")
    wait(driver, ec.presence_of_element_located((By.ID, ready_id)))


def test_sign_in_and_out(browser, daemon, shots):
    browser.get(f"{daemon}/ui/")
    wait(browser, ec.url_contains("/ui/login"))
    field = browser.find_element(By.ID, "token")
    field.send_keys("not-the-token-0123456789")
    field.submit()
    wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".error"), "not valid"))
    browser.save_screenshot(str(shots / "login.png"))
    sign_in(browser, daemon)
    cookie = browser.get_cookie("facegate_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert browser.find_element(By.ID, "principal").text == "admin"
    browser.save_screenshot(str(shots / "overview.png"))
    browser.find_element(By.ID, "signout").click()
    wait(browser, ec.url_contains("/ui/login"))
    browser.get(f"{daemon}/ui/")
    wait(browser, ec.url_contains("/ui/login"))  # the session is gone on the server too
    # The one failed sign-in above is the only error the browser saw.
    assert [e for e in console_errors(browser) if "/ui/login" not in e or "403" not in e] == []


def test_library_enrol_refuse_edit_groups_and_escaping(browser, daemon, shots):
    sign_in(browser, daemon)
    open_page(browser, "library", "enrol-form")
    files = browser.find_element(By.ID, "enrol-files")
    files.send_keys(f"{FACES / 'obama.jpg'}\n{FACES / 'biden.jpg'}")
    browser.find_element(By.ID, "enrol-name").send_keys("Visitor")
    browser.find_element(By.ID, "enrol-submit").click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#enrol-results li.ok")) == 2)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces tbody tr")) == 2)
    loaded = (
        "return [...document.querySelectorAll('#faces img.thumb')].every(i => i.complete && i.naturalWidth)"
    )
    wait(browser, lambda d: d.execute_script(loaded))
    browser.save_screenshot(str(shots / "library.png"))

    # A photo without a face is refused, and the page says why.
    files = browser.find_element(By.ID, "enrol-files")
    files.send_keys(str(NO_FACES / "chelsea.png"))
    browser.find_element(By.ID, "enrol-submit").click()
    refused = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "#enrol-results li.error")))
    assert "chelsea.png: refused" in refused.text and "FACE_NOT_FOUND" in refused.text

    # A name that is HTML stays text.
    token = api(daemon, "GET", "/api/faces?pageSize=10")["data"]["face"][0]["faceToken"]
    api(daemon, "PATCH", f"/api/faces/faceToken/{token}", {"name": XSS_NAME})
    open_page(browser, "groups", "group-form")
    open_page(browser, "library", "enrol-form")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-token='{token}']")))
    assert XSS_NAME in row.text
    assert browser.find_elements(By.CSS_SELECTOR, "img[src='x']") == []
    assert browser.execute_script("return window.__pwned === undefined")

    # Search by name.
    search = browser.find_element(By.ID, "face-search")
    search.send_keys("Visit")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces tbody tr")) == 1)

    # Edit a name.
    open_page(browser, "groups", "group-form")
    open_page(browser, "library", "enrol-form")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-token='{token}']")))
    row.find_element(By.CSS_SELECTOR, "button.edit").click()
    field = row.find_element(By.CSS_SELECTOR, "input[aria-label='New name']")
    field.clear()
    field.send_keys("Renamed")
    row.find_element(By.CSS_SELECTOR, "button.save").click()
    wait(browser, lambda d: "Renamed" in d.find_element(By.CSS_SELECTOR, f"tr[data-token='{token}']").text)
    assert api(daemon, "GET", f"/api/faces/faceToken/{token}")["data"]["name"] == "Renamed"

    # Create a group, bind the face, change the group's score.
    open_page(browser, "groups", "group-form")
    browser.find_element(By.ID, "group-id").send_keys("staff")
    browser.find_element(By.ID, "group-name").send_keys("Staff")
    browser.find_element(By.ID, "group-form").submit()
    wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "tr[data-group='staff']")))
    open_page(browser, "library", "enrol-form")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-token='{token}']")))
    row.find_element(By.CSS_SELECTOR, "button.bind").click()
    wait(browser, ec.text_to_be_present_in_element((By.ID, "library-status"), "Bound to staff"))
    detail = api(daemon, "GET", f"/api/faces/faceToken/{token}")["data"]
    assert {"groupId": "staff"} in detail["faceGroupList"]
    open_page(browser, "groups", "group-form")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, "tr[data-group='staff']")))
    score = row.find_element(By.CSS_SELECTOR, "input.score")
    score.clear()
    score.send_keys("90")
    row.find_element(By.CSS_SELECTOR, "button.save-score").click()
    wait(browser, ec.text_to_be_present_in_element((By.ID, "groups-status"), "now 90"))
    groups = api(daemon, "GET", "/api/faceGroups")["data"]["faceGroupList"]
    assert next(g for g in groups if g["groupId"] == "staff")["groupScore"] == 90
    browser.save_screenshot(str(shots / "groups.png"))

    # Delete asks once more before it deletes.
    open_page(browser, "library", "enrol-form")
    row = wait(browser, ec.presence_of_element_located((By.CSS_SELECTOR, f"tr[data-token='{token}']")))
    button = row.find_element(By.CSS_SELECTOR, "button.delete")
    button.click()
    assert button.text == "Really delete?"
    assert api(daemon, "GET", "/api/faces")["data"]["totalFaces"] == 2
    button.click()
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, f"tr[data-token='{token}']"))
    assert api(daemon, "GET", "/api/faces")["data"]["totalFaces"] == 1
    # The refused upload's 400 is the only error the browser saw.
    assert [e for e in console_errors(browser) if "/api/faces - " not in e or "(Bad Request)" not in e] == []


def test_a_forged_request_without_the_csrf_token_is_refused(browser, daemon):
    sign_in(browser, daemon)
    token = api(daemon, "GET", "/api/faces?pageSize=1")["data"]["face"]
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/api/faces/facesLib', {method: 'DELETE', credentials: 'same-origin'})"
        ".then(r => done(r.status));"
    )
    assert status == 403
    assert api(daemon, "GET", "/api/faces?pageSize=1")["data"]["face"] == token


def test_every_page_loads_without_console_errors(browser, daemon, shots):
    sign_in(browser, daemon)
    for name, ready in [
        ("overview", "warnings"),
        ("library", "faces"),
        ("groups", "groups"),
        ("live", "live-status"),
        ("events", "events"),
        ("tasks", "task-file"),
        ("settings", "config"),
    ]:
        open_page(browser, name, ready)
        time.sleep(0.3)
        browser.save_screenshot(str(shots / f"{name}.png"))
        assert console_errors(browser) == [], name
    # Settings (admin): the tokens of the store and the audit trail of a change.
    api(daemon, "POST", "/api/faceGroups", {"groupId": "audited", "groupName": "Audited"})
    open_page(browser, "groups", "groups")
    open_page(browser, "settings", "audit")
    assert "admin" in browser.find_element(By.ID, "tokens").text
    assert "group.create" in browser.find_element(By.ID, "audit").text
    # Phone-sized screen: the navigation wraps, nothing overflows sideways.
    browser.set_window_size(390, 844)
    open_page(browser, "library", "faces")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.save_screenshot(str(shots / "library-phone.png"))


def test_tasks_upload_a_video_and_get_the_result(browser, daemon, shots, tmp_path):
    from clip_maker import make_clip

    clip = tmp_path / "faces.avi"
    make_clip(clip, size=(320, 180), frames=20)
    sign_in(browser, daemon)
    open_page(browser, "tasks", "task-file")
    browser.find_element(By.ID, "task-file").send_keys(str(clip))
    browser.find_element(By.CSS_SELECTOR, "#view form").submit()
    link = wait(browser, ec.presence_of_element_located((By.ID, "task-download")), timeout=120)
    assert "done" in browser.find_element(By.ID, "task-status").text
    assert browser.find_element(By.ID, "task-progress").get_attribute("value") == "1"
    browser.save_screenshot(str(shots / "tasks.png"))
    # The result link works with the session cookie alone (no token in the page).
    size = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'})"
        ".then(r => r.arrayBuffer()).then(b => done(b.byteLength));",
        link.get_attribute("href"),
    )
    assert size > 1000
    # The result plays in the browser itself (VP9/WebM): the <video> element decodes its first frame.
    wait(browser, lambda d: d.execute_script("return document.getElementById('task-video').readyState >= 2"))
    assert browser.execute_script("return document.getElementById('task-video').videoWidth") == 320


def test_a_door_event_appears_live_on_the_events_page(browser, tmp_path, shots):
    from door_clips import visits_paths, write_clip

    clip = write_clip(tmp_path / "door.avi", visits_paths(8.0), 8.0)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    TokenStore(state / "tokens.json").add("admin", [ADMIN], token=ADMIN_TOKEN)
    env = {
        "FACEGATE_CAMERA_SOURCE": f"file:{clip}",
        "FACEGATE_CAMERA_FPS": "10",
        "FACEGATE_CHECKIN_ENABLED": "true",
        "FACEGATE_CHECKIN_COOLDOWN": "1",
    }
    proc = Daemon(tmp_path, env, [])
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}"
        proc.wait_for(r"ready: models loaded")
        api(base, "POST", "/api/faces", {"image": data_url(FACES / "obama2.jpg"), "name": "obama"})
        sign_in(browser, base)
        open_page(browser, "events", "events")
        wait(browser, ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#view .card p"), "events."))
        before = {li.get_attribute("data-id") for li in browser.find_elements(By.CSS_SELECTOR, "#events li")}
        # Without a reload, a new event of the camera's next visit shows up.
        wait(
            browser,
            lambda d: (
                {li.get_attribute("data-id") for li in d.find_elements(By.CSS_SELECTOR, "#events li")}
                - before
            ),
            timeout=90,
        )
        browser.save_screenshot(str(shots / "events.png"))
        assert browser.find_elements(By.CSS_SELECTOR, "#events .badge")
        open_page(browser, "live", "stream")
        wait(browser, lambda d: d.execute_script("return document.getElementById('stream').naturalWidth") > 0)
        browser.save_screenshot(str(shots / "live.png"))
        assert [e for e in console_errors(browser) if "stream.mjpg" not in e] == []
    finally:
        proc.stop()


READ_TOKEN = "ui-read-token-abcdef0123456789"


def test_a_read_only_token_sees_no_delete_and_a_forged_delete_is_refused(browser, daemon, tmp_path_factory):
    # The daemon loads its tokens at start: a read-only token needs its own daemon.
    tmp = tmp_path_factory.mktemp("ui-read")
    (tmp / "state").mkdir(mode=0o700)
    store = TokenStore(tmp / "state" / "tokens.json")
    store.add("admin", [ADMIN], token=ADMIN_TOKEN)
    store.add("viewer", ["read"], token=READ_TOKEN)
    proc = Daemon(tmp, {}, [])
    try:
        port = int(proc.wait_for(r"listening on http://127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}"
        proc.wait_for(r"ready: models loaded")
        token = api(base, "POST", "/api/faces", {"image": data_url(FACES / "obama.jpg"), "name": "o"})[
            "data"
        ]["faceToken"]
        sign_in(browser, base, READ_TOKEN)
        open_page(browser, "library", "faces")
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#faces tbody tr")) == 1)
        assert browser.find_elements(By.CSS_SELECTOR, "button.delete, button.edit, #enrol-form") == []
        # The page hides the button; the server refuses it anyway, even with the session CSRF token.
        status = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/ui/session').then(r => r.json()).then(s => fetch('/api/faces/' + arguments[0],"
            " {method: 'DELETE', headers: {'X-CSRF-Token': s.csrf}})).then(r => done(r.status));",
            token,
        )
        assert status == 403
        assert api(base, "GET", "/api/faces")["data"]["totalFaces"] == 1
        open_page(browser, "settings", "config")
        assert "admin token" in browser.find_element(By.ID, "config").text
        # The forged request's 403 is the only error the browser saw.
        assert [e for e in console_errors(browser) if "(Forbidden)" not in e or token not in e] == []
    finally:
        proc.stop()
