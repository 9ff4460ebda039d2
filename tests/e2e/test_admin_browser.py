"""The admin page in headless Chromium (selenium): log in, keys, adding accounts through the real flows, primary."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from admin import create_app
from admin.serving import AdminServer
from store import accounts as account_store
from store.keys import hash_key
from store.models import Account, ApiKey
from tests.fakes.admin_providers import TERMS
from tests.support.admin import SECRET

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT = 10


def _browser_missing() -> str | None:
    missing = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not os.path.exists(path)]
    return f"{' and '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)" if missing else None


@pytest.fixture
def admin_url(store, config, test_providers) -> Iterator[str]:
    server = AdminServer(create_app(store, config), "127.0.0.1", 0).start()
    yield server.url
    server.stop()


@pytest.fixture
def browser() -> Iterator:
    reason = _browser_missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="kleis-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def between_pages(condition):
    """`condition`, read as not yet met while the page is being replaced: Chrome answers a read of an element the
    navigation just removed with "Node with given id does not belong to the document", which is no stale-element
    error, so WebDriverWait would stop on it instead of looking again."""
    from selenium.common.exceptions import WebDriverException

    def check(driver):
        try:
            return condition(driver)
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return False
            raise

    return check


def wait_for(driver, css: str, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, WAIT)
    if text is not None:
        wait.until(between_pages(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)))
    return wait.until(between_pages(ec.visibility_of_element_located((By.CSS_SELECTOR, css))))


def click(driver, css: str) -> None:
    wait_for(driver, css).click()


def log_in(driver, url: str) -> None:
    driver.get(url + "/admin/accounts")
    wait_for(driver, "#secret").send_keys(SECRET)
    click(driver, "#login")
    wait_for(driver, ".flash-ok", "Logged in.")
    assert driver.current_url == url + "/admin/accounts"


def add_claude_account(driver, url: str) -> None:
    """The paste flow as a person does it: open the provider's page, copy code#state, paste it back."""
    click(driver, "#add-claude")
    assert TERMS in wait_for(driver, "#terms-warning").text
    click(driver, "#start-login")
    authorize = wait_for(driver, "#authorize-link").get_attribute("href")
    assert TERMS in wait_for(driver, "#terms-warning").text
    flow_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    driver.get(authorize)
    pasted = wait_for(driver, "#pasted-code").text
    driver.close()
    driver.switch_to.window(flow_tab)
    wait_for(driver, "#answer").send_keys(pasted)
    click(driver, "#complete-login")
    wait_for(driver, ".flash-ok", "claude account")


def test_keys_and_a_claude_account_in_a_real_browser(browser, admin_url: str, authority) -> None:
    log_in(browser, admin_url)

    # a key: created, read once (copy button), listed, revoked after confirmation
    click(browser, "nav a[href='/admin/keys']")
    wait_for(browser, "#key-name").send_keys("browser-key")
    click(browser, "#create-key")
    key = wait_for(browser, "#new-key").text
    assert key.startswith("kl_") and ApiKey.get(ApiKey.name == "browser-key").key_hash == hash_key(key)
    browser.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": admin_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}
    )
    click(browser, "#copy-key")
    wait_for(browser, "#copy-key", "Copied")
    copied = browser.execute_async_script("navigator.clipboard.readText().then(arguments[0], e => arguments[0]('refused: ' + e))")
    assert copied == key
    click(browser, "#done")
    public_id = ApiKey.get(ApiKey.name == "browser-key").public_id
    row = wait_for(browser, f"tr[data-public-id='{public_id}']")
    assert "browser-key" in row.text and "active" in row.text
    assert key not in browser.page_source  # shown once, never again
    browser.refresh()
    assert key not in browser.page_source
    click(browser, f"tr[data-public-id='{public_id}'] a[data-action='revoke']")
    click(browser, "#confirm-revoke")
    wait_for(browser, ".flash-ok", "revoked")
    assert "revoked" in wait_for(browser, f"tr[data-public-id='{public_id}'] td.state").text
    assert ApiKey.get(ApiKey.name == "browser-key").revoked_at is not None

    # two Claude accounts through the paste flow against the fake OAuth authority; make the second primary
    click(browser, "nav a[href='/admin/accounts']")
    add_claude_account(browser, admin_url)
    authority.identity = ("user-2", "grace@example.test")
    add_claude_account(browser, admin_url)
    first, second = Account.get(Account.identity == "user-1"), Account.get(Account.identity == "user-2")
    assert first.is_primary and not second.is_primary
    wait_for(browser, f"#account-{second.id} button[data-action='primary']").click()
    wait_for(browser, ".flash-ok", "is now the primary claude account")
    row = wait_for(browser, f"#account-{second.id}")
    assert row.get_attribute("data-primary") == "yes" and "★ primary" in row.text
    assert "active" in row.find_element("css selector", ".badge[class*='status-']").text
    assert "primary: requests go here first" in row.text and "login ok" in row.text
    assert "standby" in wait_for(browser, f"#account-{first.id}").text
    assert Account.get_by_id(second.id).is_primary and not Account.get_by_id(first.id).is_primary

    # why an account is not used, and the one-click reset
    account_store.set_status(first.id, "cooling", "rate limited (429); provider reset at 18:00", cooldown_until=time.time() + 3600)
    browser.refresh()
    cooling = wait_for(browser, f"#account-{first.id}")
    assert "cooling until" in cooling.text and "rate limited (429)" in cooling.text
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "admin-accounts.png"))
    cooling.find_element("css selector", "button[data-action='reset']").click()
    wait_for(browser, ".flash-ok", "reset: active now")
    assert "standby" in wait_for(browser, f"#account-{first.id}").text and Account.get_by_id(first.id).status == "active"

    click(browser, "#logout")
    wait_for(browser, ".flash-ok", "Logged out.")
    browser.get(admin_url + "/admin/keys")
    wait_for(browser, "#secret")


def test_device_login_page_polls_until_the_provider_confirms(browser, admin_url: str, authority) -> None:
    log_in(browser, admin_url)
    click(browser, "#add-copilot")
    assert TERMS in wait_for(browser, "#terms-warning").text
    click(browser, "#start-login")
    user_code = wait_for(browser, "#user-code").text
    wait_for(browser, "#poll-status", "waiting for the code to be entered")  # the page has polled at least once
    authority.approve(user_code)
    wait_for(browser, ".flash-ok", "copilot account")  # the page went on by itself
    assert "/admin/accounts" in browser.current_url
    assert Account.get(Account.identity == "user-1").provider == "copilot"


class ClaudeConsentPage:
    """Claude's authorize page as a person sees it after approving: it shows `code#state` to copy."""

    def __init__(self) -> None:
        from tests.fakes.claude import claude_oauth

        self.oauth = claude_oauth()  # its GET /oauth/authorize shows code#state (and refuses a short state)


@pytest.fixture
def real_claude_admin(store, config) -> Iterator[tuple[str, ClaudeConsentPage]]:
    page = ClaudeConsentPage()
    page.oauth.start()
    cfg = config.replace(claude_auth_base=page.oauth.url, claude_authorize_url=f"{page.oauth.url}/oauth/authorize")
    server = AdminServer(create_app(store, cfg), "127.0.0.1", 0).start()
    yield server.url, page
    server.stop()
    page.oauth.stop()


def test_a_real_claude_login_through_the_paste_flow(browser, real_claude_admin) -> None:
    from providers.claude import ClaudeProvider

    url, page = real_claude_admin
    log_in(browser, url)
    click(browser, "#add-claude")
    warning = wait_for(browser, "#terms-warning").text
    assert "Anthropic" in warning and ClaudeProvider.terms_warning and ClaudeProvider.terms_warning[:40] in warning
    click(browser, "#start-login")
    authorize = wait_for(browser, "#authorize-link").get_attribute("href")
    assert authorize.startswith(f"{page.oauth.url}/oauth/authorize?") and "code_challenge_method=S256" in authorize
    flow_tab = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(authorize)
    pasted = wait_for(browser, "#pasted-code").text
    browser.close()
    browser.switch_to.window(flow_tab)
    wait_for(browser, "#answer").send_keys(pasted)
    click(browser, "#complete-login")
    wait_for(browser, ".flash-ok", "claude account")
    account = Account.get(Account.provider == "claude")
    assert account.is_primary and account.status == "active" and account.email
    row = wait_for(browser, f"#account-{account.id}")
    assert row.get_attribute("data-primary") == "yes" and "active" in row.text and account.email in row.text
    token_request = page.oauth.last("/v1/oauth/token").json
    assert token_request["grant_type"] == "authorization_code" and token_request["code_verifier"]  # the fake checked PKCE
    assert token_request["code_verifier"] not in browser.page_source


def test_the_usage_charts_and_budget_bars_draw_in_a_real_browser(browser, admin_url: str, store) -> None:
    import time as clock

    from selenium.webdriver.common.by import By

    from store import keys as key_store
    from store import usage as usage_store

    row, _ = key_store.create_key("agent", token_budget=5000, cost_budget=2.0, budget_window="day")
    now = clock.time()
    events = [
        {
            "request_id": f"r{i}",
            "created_at": now - i * 1800 - 60,  # spread over the last day and beyond
            "key_id": row.id,
            "provider": ("claude", "codex", "copilot")[i % 3],
            "model": ("claude-sonnet-4-5", "gpt-5.4", "gpt-4.1")[i % 3],
            "status": 200,
            "input_tokens": 200 + i,
            "output_tokens": 50,
            "cost_usd": None if i % 3 == 2 else 0.01 * (i + 1),
        }
        for i in range(60)
    ]
    usage_store.insert_events(events)
    log_in(browser, admin_url)
    browser.get(admin_url + "/admin/usage?window=7d")
    chart = wait_for(browser, "svg#chart-requests")
    assert "Requests per day, last 7 days, by provider" in chart.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert int(chart.get_attribute("data-bars")) >= 2 and chart.size["height"] > 50
    bars = chart.find_elements(By.CSS_SELECTOR, "rect")
    assert len(bars) >= 3 and any("claude" in b.find_element(By.TAG_NAME, "title").get_attribute("textContent") for b in bars)
    assert "Cost, USD (list-price equivalent)" in wait_for(browser, "svg#chart-cost title").get_attribute("textContent")
    assert "list-price equivalent" in wait_for(browser, "#cost-basis").text
    budget = wait_for(browser, f"#budget-{row.id}-tokens")
    assert 0 < float(budget.get_attribute("data-share")) and "tokens:" in budget.find_element(By.TAG_NAME, "title").get_attribute(
        "textContent"
    )
    assert wait_for(browser, f"#budget-{row.id}-cost").size["width"] > 100
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "admin-usage-charts.png"))
    click(browser, "#stack-model")
    assert "by model" in wait_for(browser, "svg#chart-tokens title").get_attribute("textContent")
    browser.get(admin_url + "/admin/usage?window=today")
    assert "per hour, today" in wait_for(browser, "svg#chart-requests title").get_attribute("textContent")
    assert browser.get_log("browser") == [] or all("Content Security Policy" not in e["message"] for e in browser.get_log("browser"))


def test_quota_bars_draw_by_state_under_the_csp(browser, admin_url: str, store) -> None:
    from selenium.webdriver.common.by import By

    from tests.support.accounts import seed_quotas

    busy, old = seed_quotas(store)
    log_in(browser, admin_url)
    browser.get(admin_url + "/admin/accounts")
    five_hour = wait_for(browser, f"#account-{busy} [data-window='5h']")
    fill = five_hour.find_element(By.CSS_SELECTOR, "rect.quota-fill")
    track = five_hour.find_element(By.CSS_SELECTOR, "rect.quota-track")
    assert fill.get_attribute("width") == "97" and 0.9 < fill.size["width"] / track.size["width"] < 1.0  # drawn, not collapsed
    assert fill.value_of_css_property("fill") == "rgb(208, 139, 26)"  # the stylesheet's colour for a saving window
    stale = wait_for(browser, f"#account-{old} [data-window='5h']")
    assert stale.get_attribute("data-state") == "stale" and "stale" in stale.text
    assert "5h: 97% used" in five_hour.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "admin-account-quota.png"))
    assert all("Content Security Policy" not in entry["message"] for entry in browser.get_log("browser"))
