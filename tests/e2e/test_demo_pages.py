"""The demo's pages as a visitor sees them: an empty room says so, recent rooms say "just
now", a name without letters or digits is explained, the login form lines up, every page
has an icon and no request fails."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_chat_browser import (
    SCREENSHOT_DIR,
    chat_db,
    expect_connected,
    new_page,
    say,
    server,
)

pytestmark = pytest.mark.needs_browser
__all__ = ["chat_db", "server"]  # fixtures, shared with the chat tests


def failed_requests(page: Page) -> list[str]:
    failures: list[str] = []
    page.on(
        "response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None
    )
    page.on("requestfailed", lambda r: failures.append(f"failed {r.url}"))
    return failures


def test_an_empty_room_says_so_until_the_first_message(browser: Browser, server: str) -> None:
    page = new_page(browser, server, None, "/chat/quiet-room/")
    failures = failed_requests(page)
    expect_connected(page)
    empty = page.locator("#chat-log .empty")
    expect(empty).to_have_text("No messages in #quiet-room yet. Say hello!")
    page.screenshot(path=str(SCREENSHOT_DIR / "room-empty.png"))
    say(page, "first!")
    expect(page.locator("#chat-log .message .text")).to_have_text(["first!"])
    expect(empty).to_have_count(0)
    page.goto("/")
    expect(page.locator("ul.rooms li", has_text="#quiet-room")).to_contain_text(
        "1 message, last just now"
    )
    assert "0 minutes" not in page.content()
    assert failures == []


def test_a_room_name_without_letters_or_digits_is_explained(browser: Browser, server: str) -> None:
    page = new_page(browser, server, None, "/")
    page.fill("#room-name", "🎉🎉")
    page.click("form.pick button[type=submit]")
    expect(page.locator("#room-error")).to_contain_text("has no letters or digits")
    expect(page.locator("#room-name")).to_have_value("🎉🎉")
    page.fill("#room-name", "Party 🎉 Room")
    page.click("form.pick button[type=submit]")
    page.wait_for_url("**/chat/party-room/")


def test_the_login_form_lines_up(browser: Browser, server: str) -> None:
    page = new_page(browser, server, None, "/accounts/login/")
    page.screenshot(path=str(SCREENSHOT_DIR / "login.png"))
    boxes = [page.locator(s).bounding_box() for s in ("#id_username", "#id_password")]
    button = page.locator("form.login button").bounding_box()
    assert boxes[0] and boxes[1] and button
    assert boxes[0]["x"] == boxes[1]["x"] == button["x"]  # one column of fields
    assert boxes[0]["width"] == boxes[1]["width"]


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/admin/login/"])
def test_every_page_has_an_icon(browser: Browser, server: str, path: str) -> None:
    page = new_page(browser, server, None, path)
    icon = page.request.get("/favicon.ico")  # what a browser asks a page without a <link>
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg"), icon
    if path != "/admin/login/":
        href = page.locator("link[rel=icon]").get_attribute("href")
        assert href and page.request.get(href).status == 200
