"""What a visitor does with the widget, through its DOM contract (``data-start``, input names,
``data-kokous-state``), and what assistive technology would be told about it."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Frame, FrameLocator, Locator, Page, expect

# Tuesday 1 December 2026 in Helsinki (UTC+2): the intro page's hours are 09:00-17:00 there.
TEN = "2026-12-01T08:00:00Z"  # 10:00 in Helsinki
TEN_THIRTY = "2026-12-01T08:30:00Z"
ELEVEN = "2026-12-01T09:00:00Z"
TEN_HELSINKI = "2026-12-01T10:00:00+02:00"
COMPANY_FIELD = {"key": "company", "label": "Company", "kind": "TEXT", "required": True}

# Roles a visitor operates; each must carry a name.
OPERABLE_ROLES = {"button", "textbox", "combobox", "checkbox", "link", "radio", "searchbox", "spinbutton", "listbox"}

Surface = Page | Frame | FrameLocator


def time_button(surface: Surface, start: str) -> Locator:
    return surface.locator(f'kokous-booking button[data-start="{start}"]')


def outcome(surface: Surface, state: str) -> Locator:
    return surface.locator(f'kokous-booking [data-kokous-state="{state}"]')


async def fill_details(surface: Surface, name: str, email: str, **answers: str) -> None:
    await surface.locator('kokous-booking input[name="name"]').fill(name)
    await surface.locator('kokous-booking input[name="email"]').fill(email)
    for key, value in answers.items():
        await surface.locator(f'kokous-booking [name="answers.{key}"]').fill(value)


async def book_in_page(surface: Surface, start: str, name: str, email: str, **answers: str) -> None:
    """Choose a time, fill the form and submit it (by mouse)."""
    await time_button(surface, start).click()
    await fill_details(surface, name, email, **answers)
    await surface.locator('kokous-booking button[type="submit"]').click()


async def form_values(surface: Surface) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in ("name", "email", "answers.company"):
        control = surface.locator(f'kokous-booking [name="{name}"]')
        if await control.count():
            values[name] = await control.input_value()
    return values


async def unnamed_controls(page: Page) -> list[dict[str, Any]]:
    """Operable nodes of the page's accessibility tree (as Chromium computes it) without a name."""
    session = await page.context.new_cdp_session(page)
    try:
        tree = await session.send("Accessibility.getFullAXTree")
    finally:
        await session.detach()
    unnamed = []
    for node in tree["nodes"]:
        if node.get("ignored"):
            continue
        role = (node.get("role") or {}).get("value")
        name = str((node.get("name") or {}).get("value") or "").strip()
        if role in OPERABLE_ROLES and not name:
            unnamed.append({"role": role, "node": node.get("backendDOMNodeId")})
    return unnamed


async def assert_accessible(page: Page) -> None:
    """Every operable element has a role and a name; every control of the widget is one of them."""
    assert await unnamed_controls(page) == []
    widget = page.locator("kokous-booking")
    # Each control is in the accessibility tree with its role (the count by role includes it).
    for selector, by_role in (
        ("button", widget.get_by_role("button")),
        ("select", widget.get_by_role("combobox")),
        ("input:not([type=checkbox]), textarea", widget.get_by_role("textbox")),
    ):
        assert await by_role.count() >= await widget.locator(f"{selector}:visible").count(), selector
    await expect(page.locator("kokous-booking [aria-live='polite']")).to_have_count(1)
