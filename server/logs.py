"""Logging for the process: stdlib loggers rendered by structlog (console or JSON lines)."""

from __future__ import annotations

import logging
import re
import sys

import structlog


def _drop_color_message(_logger: object, _name: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """uvicorn adds a coloured copy of each message; one copy is enough."""
    event.pop("color_message", None)
    return event


# Query parameters that carry secrets: channel tokens (Exchange pushes), Graph's validation token,
# OAuth codes and state, manage-link and confirmation codes.
_QUERY_SECRET = re.compile(r"([?&](?:token|validationToken|code|state|booking|confirm)=)[^&\s]*")


class HideQuerySecrets(logging.Filter):
    """Access log lines name the path with its query; the secrets that ride in some queries (an
    OAuth callback's code and state, a manage link's token, Exchange's channel token) are not
    written to any log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_SECRET.sub(r"\1…", value) if isinstance(value, str) else value for value in record.args
            )
        return True


def configure_logging(*, level: str = "INFO", json_lines: bool = False) -> None:
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").addFilter(HideQuerySecrets())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
