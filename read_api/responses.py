"""What a route answers with: JSON encoded by msgspec, and CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
from fastapi.responses import Response


def encode(value: Any) -> bytes:
    return msgspec.json.encode(value, enc_hook=str)


def json(value: Any, status: int = 200) -> Response:
    return Response(encode(value), status_code=status, media_type="application/json")


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
