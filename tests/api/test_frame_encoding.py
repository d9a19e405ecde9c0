"""A shared result is encoded once and framed per subscriber, byte-equivalent to plain JSON."""

from __future__ import annotations

import json

from server.frame_encoding import DataFrameEncoder


def test_frames_equal_plain_json_and_reuse_the_encoded_data() -> None:
    # covers: SUB-1
    encoder = DataFrameEncoder(capacity=2)
    data = {"slotsChanged": {"slots": [{"start": "2026-12-01T10:00:00+02:00"}], "status": "ONLINE"}}
    first = encoder.encode({"id": "1", "type": "next", "payload": {"data": data}})
    second = encoder.encode({"type": "data", "id": "7", "payload": {"data": data}})
    assert json.loads(first) == {"id": "1", "type": "next", "payload": {"data": data}}
    assert json.loads(second) == {"type": "data", "id": "7", "payload": {"data": data}}
    assert encoder._encoded[id(data)][1] == json.dumps(data, separators=(",", ":"))
    with_errors = {"id": "2", "type": "next", "payload": {"data": None, "errors": [{"message": "x"}]}}
    assert json.loads(encoder.encode(with_errors)) == with_errors
    assert json.loads(encoder.encode({"type": "connection_ack"})) == {"type": "connection_ack"}
    for index in range(3):  # bounded: the oldest entries go
        encoder.encode({"id": "3", "type": "next", "payload": {"data": {"n": index}}})
    assert len(encoder._encoded) == 2
