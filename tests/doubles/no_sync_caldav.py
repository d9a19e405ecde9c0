"""Radicale as a CalDAV server that lacks sync-collection (RFC 6578), for the CalDAV sync fallback.

Older or smaller servers answer a ``sync-collection`` REPORT the way RFC 3253 3.6 says for a
report they do not offer: 403 with ``<D:error><D:supported-report/></D:error>`` (Radicale itself
answers so for a report a collection does not support). Their PROPFIND has no ``DAV:sync-token``
(a 404 propstat, as for any property a server does not know) and does not list sync-collection in
``DAV:supported-report-set``. With ``ctag=False`` ``CS:getctag`` is missing as well, so only the
members' ETags tell a change. Everything else is passed to Radicale unchanged, and the answers
are Radicale's, so the server stays strict about all the rest.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from tests.doubles.radicale import ForwardingApp

DAV = "{DAV:}"
SYNC_TOKEN = f"{DAV}sync-token"
GETCTAG = "{http://calendarserver.org/ns/}getctag"
UNSUPPORTED = b'<?xml version="1.0" encoding="utf-8"?>\n<error xmlns="DAV:"><supported-report/></error>'


def _without(body: bytes, hidden: set[str]) -> bytes:
    """The multistatus with ``hidden`` properties answered 404 and sync-collection not offered."""
    root = ET.fromstring(body)
    for response in root.iter(f"{DAV}response"):
        missing: list[ET.Element] = []
        for prop in response.iter(f"{DAV}prop"):
            for element in list(prop):
                if element.tag in hidden:
                    prop.remove(element)
                    missing.append(ET.Element(element.tag))
                elif element.tag == f"{DAV}supported-report-set":
                    for report in list(element):
                        if report.find(f".//{DAV}sync-collection") is not None:
                            element.remove(report)
        if missing:
            propstat = ET.SubElement(response, f"{DAV}propstat")
            ET.SubElement(propstat, f"{DAV}prop").extend(missing)
            ET.SubElement(propstat, f"{DAV}status").text = "HTTP/1.1 404 Not Found"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


class WithoutSyncCollection:
    """An ASGI app in front of a plain-HTTP Radicale: sync-collection refused, its token hidden."""

    def __init__(self, upstream: str, *, ctag: bool = True) -> None:
        self._forward = ForwardingApp(upstream)
        self._hidden = {SYNC_TOKEN} if ctag else {SYNC_TOKEN, GETCTAG}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        # Logged in first (Radicale's 401 to a request without credentials), then refused.
        if request.method == "REPORT" and b"sync-collection" in body and "authorization" in request.headers:
            await _answer(send, 403, UNSUPPORTED)
            return

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        if scope["method"] != "PROPFIND":
            await self._forward(scope, replay, send)
            return
        start: Message = {}
        content = b""

        async def keep(message: Message) -> None:
            nonlocal start, content
            if message["type"] == "http.response.start":
                start = message
            else:
                content += message.get("body", b"")

        await self._forward(scope, replay, keep)
        status = int(start["status"])
        headers = [(key, value) for key, value in start.get("headers", []) if key.lower() != b"content-length"]
        await _answer(send, status, _without(content, self._hidden) if status == 207 else content, headers)


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``body`` with the given headers (an XML type by default) and its own length."""
    kept = headers if headers is not None else [(b"content-type", b"application/xml; charset=utf-8")]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*kept, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
