"""The chat demo in a real browser: pages chatting, the staff-only room, reconnecting."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.django.procs import Process, prepare_chat_db, start_chat_server
from tests.helpers import free_port

pytestmark = pytest.mark.needs_browser

TIMEOUT_MS = 20_000
SCREENSHOT_DIR = Path(os.environ.get("NARROWS_SCREENSHOTS", "/tmp/narrows-e2e"))


@pytest.fixture(scope="module")
def chat_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("chat-e2e") / "chat.sqlite3"
    prepare_chat_db(db)
    return db


@pytest.fixture(scope="module")
def server(chat_db: Path) -> Iterator[str]:
    port = free_port()
    with start_chat_server(port, chat_db):
        yield f"http://127.0.0.1:{port}"


def new_page(browser: Browser, base: str, login: tuple[str, str] | None, path: str) -> Page:
    page = browser.new_context(base_url=base).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    if login:
        page.goto(f"/accounts/login/?next={path}")
        page.fill("#id_username", login[0])
        page.fill("#id_password", login[1])
        page.click("form.login button[type=submit]")
        page.wait_for_url(f"**{path}")
    else:
        page.goto(path)
    return page


def say(page: Page, text: str) -> None:
    page.fill("#chat-input", text)
    page.press("#chat-input", "Enter")


def expect_connected(page: Page) -> None:
    expect(page.locator("#status")).to_have_attribute("data-state", "connected", timeout=TIMEOUT_MS)


def test_two_pages_chat_with_each_other(browser: Browser, server: str) -> None:
    alice = new_page(browser, server, ("demo", "demo-password"), "/chat/e2e-room/")
    bob = new_page(browser, server, None, "/chat/e2e-room/")
    expect_connected(alice)
    expect_connected(bob)
    say(alice, "Hello from Alice's page")
    expect(bob.locator("#chat-log .message").last).to_contain_text("Hello from Alice's page")
    expect(bob.locator("#chat-log .message .user").last).to_have_text("demo")
    say(bob, "Hi Alice, <b>not bold</b>")
    last = alice.locator("#chat-log .message .text").last
    expect(last).to_have_text("Hi Alice, <b>not bold</b>")  # text, never HTML
    expect(alice.locator("#chat-log .message b")).to_have_count(0)
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(SCREENSHOT_DIR / "room.png"), full_page=True)
    # A page opened later sees both messages from the stored history.
    carol = new_page(browser, server, None, "/chat/e2e-room/")
    expect(carol.locator("#chat-log .message .text")).to_have_text(
        ["Hello from Alice's page", "Hi Alice, <b>not bold</b>"]
    )


def test_non_staff_user_is_refused_by_the_admin_chat(browser: Browser, server: str) -> None:
    page = new_page(browser, server, ("demo", "demo-password"), "/chat/admin/")
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "refused", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("staff only")
    expect(page.locator("#chat-input")).to_be_disabled()
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "refused.png"), full_page=True)

    staff = new_page(browser, server, ("staff", "staff-password"), "/chat/admin/")
    expect_connected(staff)
    say(staff, "staff meeting at 3")
    expect(staff.locator("#chat-log .message .text").last).to_have_text("staff meeting at 3")


def test_page_reconnects_after_server_restart(browser: Browser, tmp_path: Path) -> None:
    db = tmp_path / "restart.sqlite3"
    prepare_chat_db(db)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server: Process = start_chat_server(port, db)
    try:
        page = new_page(browser, base, ("demo", "demo-password"), "/chat/restart/")
        expect_connected(page)
        say(page, "before the restart")
        expect(page.locator("#chat-log .message .text")).to_have_text(["before the restart"])

        server.stop()
        status = page.locator("#status")
        expect(status).to_have_attribute("data-state", "disconnected", timeout=TIMEOUT_MS)
        expect(page.locator("#chat-input")).to_be_disabled()

        server = start_chat_server(port, db)
        expect_connected(page)
        say(page, "after the restart")
        expect(page.locator("#chat-log .message .text")).to_have_text(
            ["before the restart", "after the restart"]
        )
    finally:
        server.stop()
