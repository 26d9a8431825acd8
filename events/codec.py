"""A fast transcoder for eventsourcing's own Mapper: orjson in place of the stdlib json.

jobstream's events are msgspec Structs and are encoded by msgspec directly
(events.wire.encode_event). This transcoder is for applications built on the
library's Aggregate classes over the JetStream recorders: NatsFactory uses it unless
TRANSCODER_TOPIC says otherwise. It keeps JSONTranscoder's contract (the `_type_`/`_data_`
envelope for registered transcodings, so data written by either decodes with the other)
and subclasses it, so applications register their transcodings on it as usual.
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

_NATIVE = (str, int, float, bool, type(None))


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(self._wrap(obj))

    def decode(self, data: bytes) -> Any:
        return self._unwrap(orjson.loads(data))

    def _wrap(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _NATIVE:
            return obj
        if kind is dict:
            return {key: self._wrap(value) for key, value in obj.items()}
        if kind is list:
            return [self._wrap(value) for value in obj]
        transcoding = self.types.get(kind)
        if transcoding is None:
            raise TranscodingNotRegisteredError(
                f"Object of type {kind} is not serializable. Please define and register "
                "a custom transcoding for this type."
            )
        return {"_type_": transcoding.name, "_data_": self._wrap(transcoding.encode(obj))}

    def _unwrap(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self._unwrap(value) for value in data]
        if not isinstance(data, dict):
            return data
        if len(data) == 2 and "_type_" in data and "_data_" in data:
            name = data["_type_"]
            transcoding = self.names.get(name) if isinstance(name, str) else None
            if transcoding is None:
                raise TranscodingNotRegisteredError(
                    f"Data serialized with name '{name}' is not deserializable. Please "
                    "register a custom transcoding for this type."
                )
            return transcoding.decode(self._unwrap(data["_data_"]))
        return {key: self._unwrap(value) for key, value in data.items()}
