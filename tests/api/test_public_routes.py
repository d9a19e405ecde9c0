"""The public page ``GET /meetings/{slug}``, ``GET /robots.txt`` and the static files, per host."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from db.models import SchedulingPage, User
from tests.support.graphql_documents import add_domain, create_page, page_input, update_page_result, update_settings
from tests.support.live_server import LiveServer, start_live_server
from tests.support.owners import make_owner
from tests.support.settings import sqlite_settings

Owner = tuple[User, str]

MEET = "meet.example.com"
OTHER = "other.example.com"
FORM_FIELDS = [{"key": "company", "label": "Company", "kind": "TEXT", "required": False}]


class Elements(HTMLParser):
    """Every element's attributes (unescaped, as a browser reads them) and every text piece."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def one(self, tag: str) -> dict[str, str | None]:
        (attrs,) = self.all(tag)
        return attrs


async def get_page(server: LiveServer, slug: str, host: str | None = None, **params: str) -> httpx.Response:
    headers = {"host": host} if host else {}
    return await server.http.get(f"/meetings/{slug}", params=params, headers=headers)


async def widget(server: LiveServer, slug: str, host: str | None = None, **params: str) -> dict[str, str | None]:
    """The ``<kokous-booking>`` element's attributes on a page that must be served."""
    response = await get_page(server, slug, host, **params)
    assert response.status_code == 200, response.text
    return Elements(response.text).one("kokous-booking")


async def robots(server: LiveServer, host: str | None = None) -> httpx.Response:
    return await server.http.get("/robots.txt", headers={"host": host} if host else {})


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Page not found</h1>" in response.text
    assert "Traceback" not in response.text
    assert "content-security-policy" in response.headers


@pytest.fixture
async def owner_token(sqlite_server: LiveServer) -> str:
    _user, token = await make_owner(sqlite_server.services, "owner@example.com")
    return token


@pytest.fixture
async def domains(server: LiveServer) -> None:
    """MEET and OTHER connected."""
    await add_domain(server.services, MEET)
    await add_domain(server.services, OTHER)


# The page ------------------------------------------------------------------------------------


async def test_the_page_is_the_same_on_the_app_host_and_on_its_domain(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-6, PAGE-7, PAGE-12
    _user, token = owner
    await add_domain(server.services, MEET)
    await create_page(server, token, "intro", durations=[45, 15], timezone="America/New_York", domain=MEET)
    base = server.services.links.app_origin

    on_app = await get_page(server, "intro")
    on_domain = await get_page(server, "intro", MEET)

    for response in (on_app, on_domain):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        page = Elements(response.text)
        assert page.one("html") == {"lang": "en"}
        assert page.texts[:6] == [
            "Intro call · owner",
            "Intro call",
            "with owner",
            "15 min",
            "45 min",
            "Time zone of the page: America/New_York",
        ]
        assert "<noscript><p>Turn on JavaScript" in response.text
        assert {"type": "module", "src": f"{base}/widget/kokous.js"} in page.all("script")
        assert {"rel": "canonical", "href": f"https://{MEET}/meetings/intro"} in page.all("link")
        assert not [meta for meta in page.all("meta") if meta.get("name") == "robots"]
    assert Elements(on_app.text).one("kokous-booking") == {"page": "intro", "base": base, "source": "PAGE"}
    # On the connected domain the widget names it, so GraphQL finds the page there too.
    assert Elements(on_domain.text).one("kokous-booking") == {
        "page": "intro",
        "base": base,
        "source": "PAGE",
        "domain": MEET,
    }
    # The slug is one page whatever its case; the host name too.
    assert (await widget(server, "INTRO", "Meet.Example.com:443"))["page"] == "intro"


async def test_unknown_hosts_slugs_and_disabled_pages_are_not_found(
    server: LiveServer, owner: Owner, other_owner: Owner, domains: None
) -> None:
    # covers: PAGE-6, PAGE-10, PAGE-12
    _user, token = owner
    intro = await create_page(server, token, "intro", domain=MEET)
    await create_page(server, other_owner[1], "theirs")  # on the app's host only

    assert (await get_page(server, "intro", MEET)).status_code == 200
    assert_not_found(await get_page(server, "intro", "nowhere.example.com"))  # not connected
    assert_not_found(await get_page(server, "intro", OTHER))  # connected, but another page's domain
    assert_not_found(await get_page(server, "theirs", MEET))  # the app's host serves it, MEET does not
    for slug in ("nope", "intro%00", "a" * 500, "%3Cscript%3E", "intro%20x", "intro."):
        assert_not_found(await get_page(server, slug))
    for odd_host in ("owner@" + MEET, MEET + "/x", MEET + ":http", "[" + MEET + "]"):
        assert_not_found(await get_page(server, "intro", odd_host))

    await update_page_result(server, token, intro["id"], page_input("intro", enabled=False))
    assert_not_found(await get_page(server, "intro"))
    assert_not_found(await get_page(server, "intro", MEET))


async def test_names_are_escaped_wherever_they_come_from(sqlite_server: LiveServer) -> None:
    # covers: PAGE-12
    user, token = await make_owner(sqlite_server.services, "ann@example.com")
    await create_page(sqlite_server, token, "intro")
    # The API refuses markup in names; rows written some other way are still only text.
    async with sqlite_server.services.db.transaction() as session:
        page = (await session.exec(select(SchedulingPage).where(SchedulingPage.slug == "intro"))).one()
        page.name = "<script>alert(1)</script>"
        owner = await session.get(User, user.id)
        assert owner is not None
        owner.name = 'Ann & "Bob" <b>'
        session.add_all([page, owner])

    response = await get_page(sqlite_server, "intro")

    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "<b>" not in response.text
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in response.text
    assert "with Ann &amp; &#34;Bob&#34; &lt;b&gt;" in response.text
    assert Elements(response.text).texts[1] == "<script>alert(1)</script>"


async def test_the_visitors_zone_from_the_address_when_it_is_one(sqlite_server: LiveServer, owner_token: str) -> None:
    # covers: PAGE-12
    await create_page(sqlite_server, owner_token, "intro")
    assert (await widget(sqlite_server, "intro", timezone="Asia/Tokyo"))["timezone"] == "Asia/Tokyo"
    for ignored in ("Mars/Base", "../etc/passwd", '"><script>', "asia/tokyo", ""):
        assert "timezone" not in await widget(sqlite_server, "intro", timezone=ignored), ignored


async def test_prefill_takes_name_email_and_the_pages_own_fields(sqlite_server: LiveServer, owner_token: str) -> None:
    # covers: PAGE-12, PAGE-9
    await create_page(sqlite_server, owner_token, "intro", formFields=FORM_FIELDS)
    asked = {
        "name": "O'Brien </kokous-booking><script>alert(1)</script>",
        "email": "vera@example.com",
        "company": "Acme & Sons",
        "unknown": "zzz-not-a-field",
        "answers.company": "not a parameter",
        "timezone": "Europe/Helsinki",
    }

    response = await get_page(sqlite_server, "intro", **asked)

    element = Elements(response.text).one("kokous-booking")
    assert json.loads(element["data-prefill"] or "") == {
        "name": "O'Brien </kokous-booking><script>alert(1)</script>",
        "email": "vera@example.com",
        "answers.company": "Acme & Sons",
    }
    assert element["timezone"] == "Europe/Helsinki"
    assert "zzz-not-a-field" not in response.text
    assert "<script>alert(1)" not in response.text
    assert "O'Brien" not in response.text  # the quote would end the attribute
    # Nothing asked, nothing prefilled; a value is a hint, cut at 500 characters.
    assert "data-prefill" not in await widget(sqlite_server, "intro")
    long = await widget(sqlite_server, "intro", company="x" * 2_000)
    assert json.loads(long["data-prefill"] or "") == {"answers.company": "x" * 500}


async def test_the_chat_link_marks_the_source(sqlite_server: LiveServer, owner_token: str) -> None:
    # covers: PAGE-11, PAGE-12
    await create_page(sqlite_server, owner_token, "intro")
    assert (await widget(sqlite_server, "intro", source="chat"))["source"] == "CHAT"
    assert (await widget(sqlite_server, "intro", source="CHAT"))["source"] == "CHAT"
    for other in ("page", "api", "<x>"):
        assert (await widget(sqlite_server, "intro", source=other))["source"] == "PAGE"


async def test_the_page_answers_with_a_strict_policy_that_any_site_may_frame(sqlite_url: str, tmp_path: Path) -> None:
    # covers: PAGE-12, SEC-4
    settings = sqlite_settings(sqlite_url, tmp_path, public_url="https://kokous.example.com")
    async with start_live_server(settings) as live:
        _user, token = await make_owner(live.services, "owner@example.com")
        await create_page(live, token, "intro")

        response = await get_page(live, "intro", "kokous.example.com")

        assert response.status_code == 200
        assert response.headers["content-security-policy"] == (
            "default-src 'none'; script-src https://kokous.example.com; style-src https://kokous.example.com; "
            "connect-src https://kokous.example.com wss://kokous.example.com; "
            "img-src 'self' https://kokous.example.com data:; form-action 'none'; base-uri 'none'; frame-ancestors *"
        )
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "x-frame-options" not in response.headers
        page = Elements(response.text)
        assert page.one("kokous-booking")["base"] == "https://kokous.example.com"
        assert {"rel": "stylesheet", "href": "https://kokous.example.com/page/page.css"} in page.all("link")
        # Nothing inline: every script and style comes from the public URL.
        assert all(script.get("src", "").startswith("https://kokous.example.com/") for script in page.all("script"))  # type: ignore[union-attr]
        assert "<style" not in response.text
        assert " style=" not in response.text
        # The answer for a page that is not there carries the same policy.
        missing = await get_page(live, "nope", "kokous.example.com")
        assert missing.headers["content-security-policy"] == response.headers["content-security-policy"]


# robots.txt ----------------------------------------------------------------------------------


async def test_robots_allow_everything_while_no_owner_hides(server: LiveServer, owner: Owner) -> None:
    # covers: PAGE-8
    await add_domain(server.services, MEET)
    await create_page(server, owner[1], "intro", domain=MEET)
    for host in (None, MEET):
        response = await robots(server, host)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.text == "User-agent: *\nAllow: /\n"
    unknown = await robots(server, "nowhere.example.com")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "text/plain; charset=utf-8"


async def test_robots_keep_hidden_pages_out_on_every_host_that_serves_them(
    server: LiveServer, owner: Owner, other_owner: Owner, domains: None
) -> None:
    # covers: PAGE-8, PAGE-3, PAGE-6
    _user, token = owner
    await create_page(server, token, "intro", domain=MEET)
    await create_page(server, token, "demo", domain=MEET)
    # The other owner's pages are on OTHER through the meetings link base, and one on the app host.
    assert "errors" not in await update_settings(server, other_owner[1], meetingsLinkBase=f"{OTHER}/meetings")
    await create_page(server, other_owner[1], "theirs")

    assert "errors" not in await update_settings(server, token, hideFromSearchEngines=True)

    assert (await robots(server, MEET)).text == "User-agent: *\nDisallow: /meetings*\n"
    assert (await robots(server, OTHER)).text == "User-agent: *\nAllow: /\n"
    # The app's host serves every owner's pages: only the hidden ones are named.
    assert (await robots(server)).text == "User-agent: *\nDisallow: /meetings/demo\nDisallow: /meetings/intro\n"
    page = Elements((await get_page(server, "intro", MEET)).text)
    assert {"name": "robots", "content": "noindex, nofollow"} in page.all("meta")

    # Once every owner hides, the app's host hides every page too; a domain follows its owners.
    assert "errors" not in await update_settings(server, other_owner[1], hideFromSearchEngines=True)
    assert (await robots(server)).text == "User-agent: *\nDisallow: /meetings*\n"
    assert (await robots(server, OTHER)).text == "User-agent: *\nDisallow: /meetings*\n"

    assert "errors" not in await update_settings(server, token, hideFromSearchEngines=False)
    assert (await robots(server, MEET)).text == "User-agent: *\nAllow: /\n"
    assert (await robots(server)).text == "User-agent: *\nDisallow: /meetings/theirs\n"
    assert not [
        meta
        for meta in Elements((await get_page(server, "intro", MEET)).text).all("meta")
        if meta.get("name") == "robots"
    ]


# Static files --------------------------------------------------------------------------------


async def test_the_widget_is_served_to_every_site(sqlite_server: LiveServer) -> None:
    # covers: PAGE-12
    response = await sqlite_server.http.get("/widget/kokous.js", headers={"origin": "https://shop.example"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["x-content-type-options"] == "nosniff"
    etag = response.headers["etag"]
    assert response.content == (Path(__file__).resolve().parents[2] / "static/widget/kokous.js").read_bytes()

    again = await sqlite_server.http.get("/widget/kokous.js", headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.headers["access-control-allow-origin"] == "*"

    css = await sqlite_server.http.get("/page/page.css")
    assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
    for missing in ("/widget/nothing.js", "/widget/%2e%2e/pyproject.toml", "/page/..%2f..%2fpyproject.toml"):
        assert (await sqlite_server.http.get(missing)).status_code == 404, missing
