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
