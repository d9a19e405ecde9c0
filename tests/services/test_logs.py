"""What the process logs never holds: secrets that providers post back in a query string."""

from __future__ import annotations

import logging

from server.logs import HideQuerySecrets


def test_an_access_line_keeps_the_path_but_not_the_token_in_its_query() -> None:
    # covers: SEC-4, SYNC-5
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/webhooks/exchange?channel=abc&token=s3cret-value", "1.1", 200),
        None,
    )
    assert HideQuerySecrets().filter(record)
    line = record.getMessage()
    assert "s3cret-value" not in line
    assert "/webhooks/exchange?channel=abc&token=…" in line


def test_an_oauth_callback_and_a_manage_link_leave_no_code_state_or_token_in_the_log() -> None:
    # covers: SEC-4
    paths = [
        "/oauth/google/callback?state=s1gned.state&code=4/0AbCdEf&scope=calendar",
        "/meetings/intro?booking=v1.bWFuYWdl.c2ln&action=cancel",
    ]
    for path in paths:
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("ip", "GET", path, "1.1", 302),
            None,
        )
        assert HideQuerySecrets().filter(record)
        line = record.getMessage()
        assert not any(secret in line for secret in ("s1gned.state", "4/0AbCdEf", "v1.bWFuYWdl.c2ln")), line
        assert "scope=calendar" in line or "action=cancel" in line  # the rest of the query stays
