"""Windows time-zone names to IANA names and back, for Microsoft Graph's ``{dateTime, timeZone}`` pairs.

Graph and Exchange name zones the Windows way ("FLE Standard Time"); Kokous uses IANA names and
the standard library's ``zoneinfo`` has no table between the two. The table is Unicode CLDR's
``windowsZones.xml`` (https://github.com/unicode-org/cldr/blob/main/common/supplemental/windowsZones.xml)
as exchangelib maintains it in ``exchangelib.winzone`` (a dependency already, for Exchange), so we
keep no copy of our own. Windows names map to the CLDR "001" (default territory) IANA zone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP, MS_TIMEZONE_TO_IANA_MAP

_WINDOWS_TO_IANA: dict[str, str] = MS_TIMEZONE_TO_IANA_MAP
_IANA_TO_WINDOWS: dict[str, tuple[str, str]] = IANA_TO_MS_TIMEZONE_MAP


def zone_named(name: str) -> ZoneInfo | None:
    """The zone a Graph ``timeZone`` names (a Windows name or an IANA name); None when unknown."""
    iana = _WINDOWS_TO_IANA.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # bad keys raise all three
        return None


def windows_name(iana_name: str) -> str | None:
    """The Windows name of an IANA zone (``Europe/Helsinki`` -> ``FLE Standard Time``); None when unmapped."""
    entry = _IANA_TO_WINDOWS.get(iana_name)
    return entry[0] if entry else None
