"""Owner-typed server URLs may not lead into the server's own network (no request forgery)."""

from __future__ import annotations

import secrets

import pytest

from scheduling.calendars.public_urls import points_inside
from server.providers import provider_settings
from server.settings import Settings


@pytest.mark.parametrize(
    ("url", "inside"),
    [
        ("https://127.0.0.1/EWS/Exchange.asmx", True),
        ("https://localhost:8443/dav/", True),
        ("https://10.0.0.7/dav/", True),
        ("https://192.168.1.20/EWS/Exchange.asmx", True),
        ("https://169.254.169.254/latest/meta-data/", True),  # cloud metadata
        ("https://[::1]/dav/", True),
        ("https://8.8.8.8/dav/", False),
        ("https://[2001:4860:4860::8888]/dav/", False),
    ],
)
async def test_private_loopback_and_link_local_hosts_count_as_inside(url: str, inside: bool) -> None:
    # covers: CAL-3
    assert await points_inside(url) is inside


def test_only_production_refuses_them() -> None:
    # covers: CAL-3, OPS-3
    assert provider_settings(Settings()).allow_private_urls is True  # development: doubles on loopback
    production = Settings(env="production", secret_keys=(secrets.token_urlsafe(32),))
    assert provider_settings(production).allow_private_urls is False
