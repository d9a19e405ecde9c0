"""Booking emails, invitations, the mailer (SMTP and outbox folder) and signed links."""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import ssl
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from icalendar import Calendar

from scheduling.notifications import (
    Invitation,
    MailDeliveryError,
    Mailer,
    MeetingFacts,
    booking_cancelled,
    booking_confirmation,
    invitation_ics,
    owner_new_booking,
    owner_new_request,
    parse_smtp_url,
)
from scheduling.signing import Signer
from tests.support.smtp_sink import free_port, smtp_sink

# 03:30 UTC is still the evening before in New York and early morning in Helsinki.
START = datetime(2026, 3, 2, 3, 30, tzinfo=UTC)
END = START + timedelta(minutes=30)
STAMP = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SENDER = "Kokous <noreply@kokous.test>"
CANCEL_URL = "https://kokous.test/manage/v1.abc.def?action=cancel"
RESCHEDULE_URL = "https://kokous.test/manage/v1.abc.def?action=reschedule"
KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"


def fixed_clock() -> datetime:
    return STAMP


MEETING = MeetingFacts(
    page_name="Intro call",
    owner_name="Olga Owner",
    owner_email="olga@example.com",
    invitee_name="Ivan Invitee",
    invitee_email="ivan@example.org",
    invitee_time_zone="America/New_York",
    start=START,
    end=END,
)


def confirmation(meeting: MeetingFacts = MEETING, **overrides: Any) -> EmailMessage:
    """The confirmation of ``meeting``; an override names a field of the meeting or of the email."""
    facts = {field.name for field in fields(MeetingFacts)}
    values: dict[str, Any] = {
        "uid": "booking-1@kokous.test",
        "cancel_url": CANCEL_URL,
        "reschedule_url": RESCHEDULE_URL,
        "location_url": "https://meet.example.com/intro",
        "stamp": STAMP,
    }
    values.update({name: value for name, value in overrides.items() if name not in facts})
    changed = replace(meeting, **{name: value for name, value in overrides.items() if name in facts})
    return booking_confirmation(changed, **values)


def calendar_part(message: EmailMessage) -> EmailMessage:
    parts = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert len(parts) == 1, [part.get_content_type() for part in message.iter_attachments()]
    part = parts[0]
    assert isinstance(part, EmailMessage)
    return part


def parse_ics(part: EmailMessage) -> tuple[Calendar, Any]:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    calendar = Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def body_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert isinstance(text, str)
    return text


def header_names(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    bundle: Path


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    """A self-signed certificate for 127.0.0.1, and a server context that uses it."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    return Tls(server=server, bundle=cert_file)


# --- the confirmation over real SMTP ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "local_when", "subject_when"),
    [
        (
            "America/New_York",
            "Sunday 1 March 2026, 22:30-23:00 (America/New_York)",
            "Sun 1 Mar 2026, 22:30 (America/New_York)",
        ),
        (
            "Europe/Helsinki",
            "Monday 2 March 2026, 05:30-06:00 (Europe/Helsinki)",
            "Mon 2 Mar 2026, 05:30 (Europe/Helsinki)",
        ),
    ],
)
async def test_confirmation_arrives_over_smtp_with_local_time_links_and_invitation(
    tmp_path: Path, zone: str, local_when: str, subject_when: str
) -> None:
    # covers: BOOK-2
    # covers: OPS-5
    with smtp_sink() as sink:
        mailer = Mailer(smtp_url=sink.url, outbox_dir=tmp_path / "outbox", sender=SENDER, clock=fixed_clock)
        await mailer.send(confirmation(invitee_time_zone=zone))
        received = sink.only()

    assert received.mail_from == "noreply@kokous.test"
    assert received.rcpt_tos == ["ivan@example.org"]
    message = received.message
    assert message["To"] == "Ivan Invitee <ivan@example.org>"
    assert message["From"] == "Kokous <noreply@kokous.test>"
    assert message["Reply-To"] == "Olga Owner <olga@example.com>"
    assert message["Subject"] == f"Confirmed: Intro call with Olga Owner on {subject_when}"
    assert message["Date"] == "Sun, 01 Mar 2026 12:00:00 +0000"
    assert re.fullmatch(r"<.+@kokous\.test>", str(message["Message-ID"]))

    body = body_text(message)
    assert f"When:  {local_when}" in body
    assert "What:  Intro call with Olga Owner" in body
    assert f"Reschedule: {RESCHEDULE_URL}" in body
    assert f"Cancel:     {CANCEL_URL}" in body
    assert "Where: https://meet.example.com/intro" in body

    part = calendar_part(message)
    assert part.get_filename() == "invite.ics"
    assert part.get_param("method") == "REQUEST"
    calendar, event = parse_ics(part)
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(calendar["VERSION"]) == "2.0"
    assert "Kokous" in str(calendar["PRODID"])
    assert str(event["UID"]) == "booking-1@kokous.test"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].dt == START
    assert event["DTSTART"].dt.utcoffset() == timedelta(0)
    assert event["DTEND"].dt == END
    assert event["DTSTAMP"].dt == STAMP
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == "Intro call with Olga Owner"
    assert str(event["URL"]) == "https://meet.example.com/intro"
    assert str(event["ORGANIZER"]) == "mailto:olga@example.com"
    assert event["ORGANIZER"].params["CN"] == "Olga Owner"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:ivan@example.org"
    assert attendee.params["CN"] == "Ivan Invitee"
    assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["RSVP"] == "TRUE"
    raw_ics = part.get_payload(decode=True)
    assert isinstance(raw_ics, bytes)
    assert b"DTSTART:20260302T033000Z" in raw_ics
    assert b"DTEND:20260302T040000Z" in raw_ics
    assert not (tmp_path / "outbox").exists()


async def test_cancellation_sends_a_cancel_invitation_for_the_same_event(tmp_path: Path) -> None:
    # covers: BOOK-5
    message = booking_cancelled(
        replace(MEETING, invitee_time_zone="Europe/Helsinki"),
        uid="booking-1@kokous.test",
        sequence=2,
        reason="Something came up.\r\nBcc: x@evil.test",
        book_again_url="https://kokous.test/meetings/intro",
        stamp=STAMP,
    )
    with smtp_sink() as sink:
        await Mailer(smtp_url=sink.url, outbox_dir=tmp_path, sender=SENDER).send(message)
        received = sink.only().message

    assert received["Subject"] == "Cancelled: Intro call with Olga Owner on Mon 2 Mar 2026, 05:30 (Europe/Helsinki)"
    body = body_text(received)
    assert "When: Monday 2 March 2026, 05:30-06:00 (Europe/Helsinki)" in body
    assert "Reason: Something came up. Bcc: x@evil.test" in body
    assert "Book another time: https://kokous.test/meetings/intro" in body
    part = calendar_part(received)
    assert part.get_param("method") == "CANCEL"
    calendar, event = parse_ics(part)
    assert str(calendar["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == "booking-1@kokous.test"
    assert int(event["SEQUENCE"]) == 2
    assert str(event["STATUS"]) == "CANCELLED"
    assert event["DTSTART"].dt == START
    assert str(event["ATTENDEE"]) == "mailto:ivan@example.org"


async def test_a_rescheduled_confirmation_updates_the_event(tmp_path: Path) -> None:
    # covers: BOOK-5
    later = START + timedelta(days=1)
    message = confirmation(
        replace(MEETING, start=later, end=later + timedelta(minutes=30)), sequence=1, rescheduled=True
    )
    assert str(message["Subject"]).startswith("Rescheduled: Intro call with Olga Owner on Mon 2 Mar 2026, 22:30")
    _, event = parse_ics(calendar_part(message))
    assert int(event["SEQUENCE"]) == 1
    assert event["DTSTART"].dt == later


async def test_owner_emails_use_the_owner_zone_and_reply_to_the_invitee() -> None:
    # covers: BOOK-2
    booked = owner_new_booking(
        replace(MEETING, owner_time_zone="Europe/Helsinki", answers={"Topic": "Pricing\nCancel: https://evil.test"}),
        booking_url="https://kokous.test/dashboard/bookings/1",
    )
    assert booked["To"] == "Olga Owner <olga@example.com>"
    assert booked["Reply-To"] == "Ivan Invitee <ivan@example.org>"
    assert booked["Subject"] == "New booking: Ivan Invitee - Intro call on Mon 2 Mar 2026, 05:30 (Europe/Helsinki)"
    body = body_text(booked)
    assert "When: Monday 2 March 2026, 05:30-06:00 (Europe/Helsinki)" in body
    # A visitor's multi-line answer stays indented under its label.
    assert "- Topic: Pricing\n    Cancel: https://evil.test" in body
    assert not any(line.startswith("Cancel:") for line in body.splitlines())

    request = owner_new_request(
        replace(MEETING, owner_time_zone="America/New_York"),
        requests_url="https://kokous.test/dashboard/requests",
    )
    assert request["Subject"] == "Request: Ivan Invitee - Intro call on Sun 1 Mar 2026, 22:30 (America/New_York)"
    body = body_text(request)
    assert "Requested time: Sunday 1 March 2026, 22:30-23:00 (America/New_York)" in body
    assert "accept" in body.lower()
    assert "decline" in body.lower()
    assert "https://kokous.test/dashboard/requests" in body
    assert not list(request.iter_attachments())


# --- the outbox folder -------------------------------------------------------------------------


async def test_without_smtp_the_message_is_written_to_the_outbox_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # covers: OPS-5
    outbox = tmp_path / "outbox"
    mailer = Mailer(smtp_url=None, outbox_dir=outbox, sender=SENDER, clock=fixed_clock)
    with caplog.at_level(logging.INFO, logger="scheduling.notifications.mailer"):
        await mailer.send(confirmation())
        await mailer.send(confirmation(invitee_email="second@example.org"))

    files = sorted(outbox.iterdir())
    assert len(files) == 2, files  # no temporary files left behind
    for path in files:
        assert re.fullmatch(r"20260301T120000000000Z-[0-9a-f]{8}\.eml", path.name), path.name
    parsed = [BytesParser(policy=policy.default).parsebytes(path.read_bytes()) for path in files]
    assert sorted(str(message["To"]) for message in parsed) == [
        "Ivan Invitee <ivan@example.org>",
        "Ivan Invitee <second@example.org>",
    ]
    message = parsed[0]
    assert isinstance(message, EmailMessage)
    assert message["From"] == "Kokous <noreply@kokous.test>"
    assert str(message["Subject"]).startswith("Confirmed: Intro call with Olga Owner")
    _, event = parse_ics(calendar_part(message))
    assert event["DTSTART"].dt == START
    logged = [record for record in caplog.records if "outbox" in record.getMessage()]
    assert len(logged) == 2
    assert {record.__dict__["path"] for record in logged} == {str(path) for path in files}


# --- header injection ---------------------------------------------------------------------------


async def test_line_breaks_in_names_add_no_header_and_no_recipient(tmp_path: Path) -> None:
    # covers: BOOK-2
    message = confirmation(
        invitee_name="Eve\r\nBcc: x@evil.test",
        owner_name="Olga\nX-Injected: 1",
        page_name="Intro\r\nBcc: y@evil.test\r\n\r\nfake body",
    )
    with smtp_sink() as sink:
        await Mailer(smtp_url=sink.url, outbox_dir=tmp_path, sender=SENDER).send(message)
        received = sink.only()

    assert received.rcpt_tos == ["ivan@example.org"]
    names = header_names(received.raw)
    assert "bcc" not in names
    assert "x-injected" not in names
    assert sorted(set(names)) == sorted(names), names  # no header twice
    parsed = received.message
    assert [address.addr_spec for address in parsed["To"].addresses] == ["ivan@example.org"]
    assert parsed["To"].addresses[0].display_name == "Eve Bcc: x@evil.test"
    assert parsed["Subject"].startswith("Confirmed: Intro Bcc: y@evil.test fake body with Olga X-Injected: 1 on ")

    raw_ics = calendar_part(parsed).get_payload(decode=True)
    assert isinstance(raw_ics, bytes)
    unfolded = raw_ics.replace(b"\r\n ", b"").split(b"\r\n")
    assert not [line for line in unfolded if line.upper().startswith((b"BCC", b"X-INJECTED"))]
    _, event = parse_ics(calendar_part(parsed))
    assert event["ATTENDEE"].params["CN"] == "Eve Bcc: x@evil.test"


def test_line_breaks_in_invitation_text_stay_inside_their_property() -> None:
    # covers: BOOK-2
    invitation = Invitation(
        uid="booking-2@kokous.test",
        sequence=0,
        method="REQUEST",
        summary="Hi\r\nATTENDEE:mailto:evil@evil.test",
        description="line one\r\nATTENDEE;CN=Evil:mailto:evil@evil.test\nORGANIZER:mailto:evil@evil.test",
        start=START,
        end=END,
        organizer_email="olga@example.com",
        organizer_name='Olga "The Owner"\r\nATTENDEE:mailto:evil@evil.test',
        attendee_email="ivan@example.org",
        attendee_name="Ivan;ROLE=CHAIR:mailto:evil@evil.test",
        status="CONFIRMED",
    )
    ics = invitation_ics(invitation, stamp=STAMP)
    calendar = Calendar.from_ical(ics)
    (event,) = calendar.walk("VEVENT")
    attendees = event["ATTENDEE"]
    assert not isinstance(attendees, list)
    assert str(attendees) == "mailto:ivan@example.org"
    assert attendees.params["ROLE"] == "REQ-PARTICIPANT"
    assert attendees.params["CN"] == "Ivan;ROLE=CHAIR:mailto:evil@evil.test"
    assert str(event["ORGANIZER"]) == "mailto:olga@example.com"
    assert str(event["DESCRIPTION"]) == (
        "line one\nATTENDEE;CN=Evil:mailto:evil@evil.test\nORGANIZER:mailto:evil@evil.test"
    )
    assert str(event["SUMMARY"]) == "Hi ATTENDEE:mailto:evil@evil.test"
    unfolded = ics.replace(b"\r\n ", b"").split(b"\r\n")
    assert sum(line.startswith(b"ATTENDEE") for line in unfolded) == 1
    assert sum(line.startswith(b"ORGANIZER") for line in unfolded) == 1


@pytest.mark.parametrize(
    "email",
    [
        "ivan@example.org\r\nBcc: x@evil.test",
        "ivan@example.org\nBcc: x@evil.test",
        "ivan@example.org, x@evil.test",
        "Ivan <ivan@example.org>",
        "ivan@example.org>\r\nBcc:x@evil.test",
        "ivan",
        "",
    ],
)
def test_an_address_that_is_not_one_plain_address_is_refused(email: str) -> None:
    # covers: BOOK-2
    with pytest.raises(ValueError, match="not a valid email address"):
        confirmation(invitee_email=email)
    with pytest.raises(ValueError, match="not a valid email address"):
        confirmation(owner_email=email)


def test_non_ascii_and_punctuated_names_are_encoded_not_broken() -> None:
    # covers: BOOK-2
    message = confirmation(invitee_name="Äijälä Öberg", owner_name='Smith, "Jo"', invitee_email="ivan@exämple.org")
    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # headers are 7-bit: names are RFC 2047 encoded
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    (to,) = parsed["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Äijälä Öberg", "ivan@xn--exmple-cua.org")
    (reply_to,) = parsed["Reply-To"].addresses
    assert (reply_to.display_name, reply_to.addr_spec) == ('Smith, "Jo"', "olga@example.com")
    assert parsed["Subject"] == 'Confirmed: Intro call with Smith, "Jo" on Sun 1 Mar 2026, 22:30 (America/New_York)'
    assert "Hello Äijälä Öberg," in body_text(parsed)


def test_bad_times_and_zones_are_refused() -> None:
    # covers: BOOK-2
    with pytest.raises(ValueError, match="aware"):
        confirmation(start=START.replace(tzinfo=None))
    with pytest.raises(ValueError, match="unknown time zone"):
        confirmation(invitee_time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="start must be before end"):
        confirmation(start=END, end=START)
    with pytest.raises(ValueError, match="links"):
        confirmation(cancel_url="https://kokous.test/x\r\nBcc: x@evil.test")


# --- the mailer's SMTP paths ------------------------------------------------------------------


async def test_smtp_down_raises_one_retryable_delivery_error(tmp_path: Path) -> None:
    # covers: OPS-5
    port = free_port()  # nothing listens there
    mailer = Mailer(smtp_url=f"smtp://127.0.0.1:{port}", outbox_dir=tmp_path, sender=SENDER, timeout=5)
    with pytest.raises(MailDeliveryError, match=f"smtp://127.0.0.1:{port}") as caught:
        await mailer.send(confirmation())
    assert caught.value.permanent is False
    assert not list(tmp_path.iterdir())  # not silently diverted to the outbox folder


async def test_starttls_with_login_delivers_and_never_logs_the_password(
    tmp_path: Path, tls: Tls, caplog: pytest.LogCaptureFixture
) -> None:
    # covers: OPS-5
    password = "s3cret pass/wörd"
    with smtp_sink(starttls=tls.server, credentials=("mailer", password)) as sink:
        url = f"smtp+starttls://mailer:{quote(password, safe='')}@127.0.0.1:{sink.port}"
        mailer = Mailer(smtp_url=url, outbox_dir=tmp_path, sender=SENDER, cert_bundle=tls.bundle)
        assert password not in repr(mailer)
        with caplog.at_level(logging.DEBUG):
            await mailer.send(confirmation())
        assert sink.logins == [("mailer", password)]
        assert sink.only().rcpt_tos == ["ivan@example.org"]

        wrong = f"smtp+starttls://mailer:{quote('wrong-' + password, safe='')}@127.0.0.1:{sink.port}"
        with caplog.at_level(logging.DEBUG), pytest.raises(MailDeliveryError) as caught:
            await Mailer(smtp_url=wrong, outbox_dir=tmp_path, sender=SENDER, cert_bundle=tls.bundle).send(
                confirmation()
            )
        assert caught.value.permanent is True  # 535: retrying will not help
        assert len(sink.messages) == 1

    logged = " ".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    assert password not in logged
    assert quote(password, safe="") not in logged
    assert password not in str(caught.value)


async def test_implicit_tls_delivers(tmp_path: Path, tls: Tls) -> None:
    # covers: OPS-5
    with smtp_sink(implicit_tls=tls.server) as sink:
        mailer = Mailer(
            smtp_url=f"smtps://127.0.0.1:{sink.port}", outbox_dir=tmp_path, sender=SENDER, cert_bundle=tls.bundle
        )
        await mailer.send(confirmation())
        assert sink.only().message["To"] == "Ivan Invitee <ivan@example.org>"


async def test_an_untrusted_certificate_is_a_delivery_error(tmp_path: Path, tls: Tls) -> None:
    # covers: OPS-5
    with smtp_sink(implicit_tls=tls.server) as sink:
        mailer = Mailer(smtp_url=f"smtps://127.0.0.1:{sink.port}", outbox_dir=tmp_path, sender=SENDER)
        with pytest.raises(MailDeliveryError):
            await mailer.send(confirmation())
        assert sink.messages == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, False, None, None)),
        ("smtp://127.0.0.1:2525", ("127.0.0.1", 2525, False, False, None, None)),
        ("smtp+starttls://u%40x:p%3Aw@mail.example.com", ("mail.example.com", 587, False, True, "u@x", "p:w")),
        ("smtps://user:pw@mail.example.com:4650/", ("mail.example.com", 4650, True, False, "user", "pw")),
        ("SMTPS://[::1]", ("::1", 465, True, False, None, None)),
    ],
)
def test_smtp_urls_are_parsed(url: str, expected: tuple[object, ...]) -> None:
    # covers: OPS-5
    target = parse_smtp_url(url)
    assert (target.host, target.port, target.use_tls, target.start_tls, target.username, target.password) == expected
    if target.password:
        assert target.password not in repr(target)
        assert target.password not in target.display


@pytest.mark.parametrize(
    "url",
    [
        "",
        "mail.example.com:25",
        "http://mail.example.com",
        "smtp://",
        "smtp://user:topsecret@mail.example.com:notaport",
        "smtp://user:topsecret@mail.example.com:70000",
        "smtp://mail.example.com:0",
        "smtp://mail.example.com/path",
        "smtp://mail.example.com?tls=1",
        "smtp://:topsecret@mail.example.com",
    ],
)
def test_bad_smtp_urls_are_refused_without_echoing_them(url: str) -> None:
    # covers: OPS-5
    with pytest.raises(ValueError, match="SMTP URL") as caught:
        parse_smtp_url(url)
    assert "topsecret" not in str(caught.value)


# --- signed links ------------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PURPOSE = "manage-booking"


def test_a_signed_link_round_trips_and_is_url_safe() -> None:
    # covers: BOOK-5
    signer = Signer([KEY_A])
    for subject in ["3f1c2a0e9b8d4c7e8f6a5b4c3d2e1f00", "with.dots and spaces", "Äijälä/ü?&=", ""]:
        token = signer.sign(PURPOSE, subject, NOW + timedelta(days=30))
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", token), token
        assert quote(token, safe="") == token
        assert signer.verify(PURPOSE, token, NOW) == subject


def test_a_signed_link_expires() -> None:
    # covers: BOOK-5
    signer = Signer([KEY_A])
    expires = NOW + timedelta(hours=1)
    token = signer.sign(PURPOSE, "booking-1", expires)
    assert signer.verify(PURPOSE, token, expires - timedelta(seconds=1)) == "booking-1"
    assert signer.verify(PURPOSE, token, expires) is None
    assert signer.verify(PURPOSE, token, expires + timedelta(days=1)) is None
    # The expiry is an instant: the zone it was given in does not matter.
    helsinki = signer.sign(PURPOSE, "booking-1", expires.astimezone(timezone(timedelta(hours=2))))
    assert signer.verify(PURPOSE, helsinki, expires - timedelta(seconds=1)) == "booking-1"
    assert signer.verify(PURPOSE, helsinki, expires) is None


def test_a_signed_link_is_only_good_for_its_purpose() -> None:
    # covers: BOOK-5
    signer = Signer([KEY_A])
    token = signer.sign(PURPOSE, "booking-1", NOW + timedelta(days=1))
    assert signer.verify("confirm-email", token, NOW) is None
    assert signer.verify(PURPOSE, token, NOW) == "booking-1"


def test_a_tampered_link_is_refused() -> None:
    # covers: BOOK-5
    signer = Signer([KEY_A])
    token = signer.sign(PURPOSE, "booking-1", NOW + timedelta(days=1))
    version, payload, mac = token.split(".")
    expiry = base64.urlsafe_b64decode(payload + "==").decode().split(".", 1)[0]

    def encode(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()

    forged = [
        f"{version}.{encode(f'{expiry}.booking-2')}.{mac}",  # another booking
        f"{version}.{encode(f'{int(expiry) + 10**8}.booking-1')}.{mac}",  # a later expiry
        f"{version}.{payload}.{mac[:-2]}{'A' if mac[-2] != 'A' else 'B'}{mac[-1]}",  # a changed signature
        f"{version}.{payload}.{mac}A",
        f"{version}.{payload}.{mac}=",
        f"v2.{payload}.{mac}",
        f"{version}.{payload}.",
        f"{version}.{payload}",
    ]
    for candidate in forged:
        assert signer.verify(PURPOSE, candidate, NOW) is None, candidate
    # Another secret's signature over the same payload is not ours either.
    other = Signer([KEY_B]).sign(PURPOSE, "booking-1", NOW + timedelta(days=1))
    assert signer.verify(PURPOSE, other, NOW) is None


def test_keys_rotate_new_key_signs_old_key_still_verifies() -> None:
    # covers: BOOK-5
    old = Signer([KEY_A])
    rotated = Signer([KEY_B, KEY_A])
    old_token = old.sign(PURPOSE, "booking-1", NOW + timedelta(days=1))
    new_token = rotated.sign(PURPOSE, "booking-2", NOW + timedelta(days=1))
    assert rotated.verify(PURPOSE, old_token, NOW) == "booking-1"
    assert rotated.verify(PURPOSE, new_token, NOW) == "booking-2"
    assert old.verify(PURPOSE, new_token, NOW) is None  # signed with the new key
    assert Signer([KEY_B]).verify(PURPOSE, new_token, NOW) == "booking-2"
    assert Signer([KEY_B]).verify(PURPOSE, old_token, NOW) is None  # the old key dropped


@pytest.mark.parametrize(
    "token",
    [
        "",
        ".",
        "..",
        "v1..",
        "v1.a.b",
        "v1.!!!.???",
        "v1.Zm9v.Zm9v.Zm9v",
        "v1.ä.ö",
        "v1.\x00.\x00",
        "v1." + "A" * 5000 + ".AAAA",
        "not a token at all",
        "%76%31.abc.def",
    ],
)
def test_garbage_tokens_verify_to_none(token: str) -> None:
    # covers: BOOK-5
    assert Signer([KEY_A]).verify(PURPOSE, token, NOW) is None


def test_a_garbage_value_of_the_wrong_type_verifies_to_none() -> None:
    # covers: BOOK-5
    assert Signer([KEY_A]).verify(PURPOSE, None, NOW) is None  # type: ignore[arg-type]
    assert Signer([KEY_A]).verify(PURPOSE, b"v1.a.b", NOW) is None  # type: ignore[arg-type]


def test_a_signer_without_good_keys_fails_closed() -> None:
    # covers: BOOK-5
    for keys in ([], ["short"], [KEY_A, ""]):
        with pytest.raises(ValueError, match="key"):
            Signer(keys)
    with pytest.raises(TypeError):
        Signer(KEY_A)
    with pytest.raises(ValueError, match="aware"):
        Signer([KEY_A]).sign(PURPOSE, "booking-1", datetime(2026, 3, 1))
    assert KEY_A not in repr(Signer([KEY_A]))
