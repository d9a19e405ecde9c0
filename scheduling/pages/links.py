"""Public page links: ``<scheme>://<domain>/meetings/<slug>`` on the app or a connected domain."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from urllib.parse import urlencode, urlsplit

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.models import Domain, SchedulingPage, User
from scheduling import validation
from scheduling.errors import ValidationFailed

MEETINGS_PATH = "/meetings"
WIDGET_PATH = "/widget/kokous.js"


@dataclass(frozen=True)
class ChatLink:
    """Where the chat widget sends visitors, and the snippet that embeds the booking there."""

    url: str
    snippet: str


class LinkBuilder:
    """Builds and checks page links; the app's own host serves every page."""

    def __init__(self, public_url: str) -> None:
        parts = urlsplit(public_url)
        self.app_origin = f"{parts.scheme}://{parts.netloc}"
        self.app_host = (parts.hostname or "").lower()

    def chat_link(self, page: SchedulingPage, owner: User) -> ChatLink:
        """Bookings made through either are recorded as coming from the chat."""
        attributes = {"page": page.slug, "base": self.app_origin, "source": "CHAT"}
        if page.domain:
            attributes["domain"] = page.domain
        element = " ".join(f'{name}="{escape(value)}"' for name, value in attributes.items())
        snippet = (
            f'<script type="module" src="{escape(self.app_origin + WIDGET_PATH)}"></script>\n'
            f"<kokous-booking {element}></kokous-booking>"
        )
        return ChatLink(url=f"{self.page_url(page, owner)}?{urlencode({'source': 'chat'})}", snippet=snippet)

    def default_base(self) -> str:
        return self.app_origin + MEETINGS_PATH

    def base_for(self, page: SchedulingPage, owner: User) -> str:
        if page.domain:
            return f"https://{page.domain}{MEETINGS_PATH}"
        return owner.meetings_link_base or self.default_base()

    def page_url(self, page: SchedulingPage, owner: User) -> str:
        return f"{self.base_for(page, owner)}/{page.slug}"

    def page_host(self, page: SchedulingPage, owner: User) -> str:
        return (urlsplit(self.base_for(page, owner)).hostname or "").lower()

    def serves(self, page: SchedulingPage, owner: User, host: str | None) -> bool:
        """Whether a visitor on ``host`` may see the page (the app host serves all pages)."""
        if host is None:
            return True
        host = host.lower().rstrip(".")
        return host == self.app_host or host == self.page_host(page, owner)

    async def _require_known(self, session: AsyncSession, field: str, host: str) -> None:
        if host == self.app_host:
            return
        known = (await session.exec(select(Domain.id).where(Domain.host == host))).first()
        if known is None:
            raise ValidationFailed(field, f"{host} is not a connected domain; add it with `kokous domains add {host}`")

    async def normalise_page_domain(self, session: AsyncSession, value: str | None) -> str | None:
        """A page's own domain: None for the owner's default, else a connected host."""
        if value is None or not value.strip():
            return None
        host = value.strip().lower()
        if host != self.app_host:
            host = validation.host("domain", host)
        await self._require_known(session, "domain", host)
        return None if host == self.app_host else host

    async def normalise_link_base(self, session: AsyncSession, value: str) -> str | None:
        """The owner's meetings link base, e.g. ``https://meet.example.com/meetings``.

        An empty value restores the default; a bare host gets https and ``/meetings``.
        """
        value = value.strip()
        if not value:
            return None
        if "://" not in value:
            value = "https://" + value
        url = validation.web_url("meetingsLinkBase", value, max_length=300)
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValidationFailed("meetingsLinkBase", "the link base must not have a query")
        if parts.path.rstrip("/") not in ("", MEETINGS_PATH):
            raise ValidationFailed("meetingsLinkBase", f"the link base path must be {MEETINGS_PATH}")
        if host == self.app_host:
            return None if f"{parts.scheme}://{parts.netloc}" == self.app_origin else self._bad_app()
        if parts.scheme != "https" or parts.port is not None:
            raise ValidationFailed("meetingsLinkBase", "a connected domain is served over https")
        await self._require_known(session, "meetingsLinkBase", validation.host("meetingsLinkBase", host))
        return f"https://{host}{MEETINGS_PATH}"

    def _bad_app(self) -> str:
        raise ValidationFailed("meetingsLinkBase", f"the app is served at {self.app_origin}")
