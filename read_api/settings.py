"""The read API's settings: read from the environment once, in ``main``, into a frozen Struct."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from events.jetstream import STREAM_VARIABLES


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    read_model_url: str
    stream_env: dict[str, str] = {}  # STREAM_VARIABLES (NATS_URL, its user, ...): the audit reads the stream
    command_api_url: str = "http://127.0.0.1:8000"
    timezone: str = "UTC"
    wait_seconds: float = 5.0
    link_secret: str = ""  # signs the links customers open their invoices with (none: no links)
    public_url: str = ""  # where customers reach this read API, for those links


def settings_from_environment(env: Mapping[str, str] | None = None) -> Settings:
    import os

    env = os.environ if env is None else env
    return Settings(
        read_model_url=env["READ_MODEL_URL"],
        command_api_url=env.get("COMMAND_API_URL", "http://127.0.0.1:8000"),
        timezone=env.get("JOBSTREAM_TIMEZONE", "UTC"),
        stream_env={key: env.get(key, "") for key in STREAM_VARIABLES},
        link_secret=env.get("JOBSTREAM_LINK_SECRET", ""),
        public_url=env.get("JOBSTREAM_PUBLIC_URL", ""),
    )
