"""Encode a shared subscription result once, however many sockets it goes to.

Identical anonymous subscriptions share one execution (``schema.shared_streams``), so every
subscriber's ``next`` message carries the very same ``data`` object. Encoding that ~10 KB
object again for each of a thousand sockets was most of the fan-out's cost; here it is encoded
once (recognised by identity) and only the small frame around it is built per socket.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from json.encoder import encode_basestring_ascii
from typing import Any

_DATA_MESSAGE_TYPES = ("next", "data")  # graphql-transport-ws and the legacy graphql-ws


class DataFrameEncoder:
    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        # id(data) -> (data, its JSON); the reference keeps the id from being reused meanwhile.
        self._encoded: OrderedDict[int, tuple[object, str]] = OrderedDict()

    def encode(self, message: object) -> str:
        if not isinstance(message, dict) or message.get("type") not in _DATA_MESSAGE_TYPES:
            return _dumps(message)
        payload = message.get("payload")
        if not isinstance(payload, dict) or set(payload) != {"data"}:
            return _dumps(message)
        operation_id = message.get("id")
        if set(message) == {"id", "type", "payload"} and isinstance(operation_id, str):
            # A thousand frames per change: the head is built directly, not by json.dumps.
            head = f'{{"id":{encode_basestring_ascii(operation_id)},"type":"{message["type"]}"'
        else:
            head = _dumps({key: value for key, value in message.items() if key != "payload"})[:-1]
        return f'{head},"payload":{{"data":{self._data(payload["data"])}}}}}'

    def _data(self, data: object) -> str:
        key = id(data)
        cached = self._encoded.get(key)
        if cached is not None and cached[0] is data:
            self._encoded.move_to_end(key)
            return cached[1]
        encoded = _dumps(data)
        self._encoded[key] = (data, encoded)
        if len(self._encoded) > self._capacity:
            self._encoded.popitem(last=False)
        return encoded


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
