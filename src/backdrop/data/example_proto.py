"""The `tf.train.Example` protobuf by hand: written, and read with every length bounded."""

from __future__ import annotations

from collections.abc import Iterator

_UINT64 = 2**64
_KINDS = {1: "bytes", 2: "float", 3: "int64"}  # Feature's oneof: bytes_list, float_list, int64_list


class ExampleFormatError(ValueError):
    """Serialized bytes are not one of Backdrop's Examples (malformed protobuf, a key missing or
    of another kind, a picture that does not decode); the message is the reason, in one line."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature(value: bytes | int) -> bytes:
    if isinstance(value, bytes):  # Feature.bytes_list (1) -> BytesList.value (1)
        return _field(1, _field(1, value))
    # Feature.int64_list (3) -> Int64List.value (1), packed; values here are never negative.
    return _field(3, _field(1, _varint(value)))


def serialize_example(features: dict[str, bytes | int]) -> bytes:
    """Serializes a `tf.train.Example` from a flat dict of bytes/int features."""
    entries = b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _feature(value)))
        for key, value in sorted(features.items())
    )
    return _field(1, entries)  # Example.features (1) -> Features.feature map (1)


def _read_varint(data: memoryview, at: int) -> tuple[int, int]:
    """The varint at `at` (at most 10 bytes, kept to 64 bits as protobuf does) and where it ends."""
    value = 0
    for shift in range(0, 70, 7):
        if at >= len(data):
            raise ExampleFormatError("a varint runs past the end of its message")
        byte = data[at]
        value, at = value | (byte & 0x7F) << shift, at + 1
        if byte < 0x80:
            return value % _UINT64, at
    raise ExampleFormatError("a varint is longer than 10 bytes")


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """`(number, wire type, value)` of each field of one protobuf message, in order: a
    length-delimited value as a view of its bytes, a varint or fixed-size one as its integer."""
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ExampleFormatError("a field is numbered 0")
        if wire == 0:
            value, at = _read_varint(data, at)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if size > len(data) - at:
                raise ExampleFormatError(f"field {number} runs past the end of its message")
            value, at = int.from_bytes(data[at : at + size], "little"), at + size
        elif wire == 2:
            size, at = _read_varint(data, at)
            if size > len(data) - at:
                raise ExampleFormatError(
                    f"field {number} claims {size} bytes where {len(data) - at} are left"
                )
            value, at = data[at : at + size], at + size
        else:  # groups (3, 4) are long deprecated in protobuf, and 6, 7 do not exist
            raise ExampleFormatError(f"field {number} has wire type {wire}")
        yield number, wire, value


def _int64s(items: list[tuple[int, int | memoryview]]) -> list[int]:
    """Int64List.value, packed (wire type 2) or not (0), as signed integers."""
    values = []
    for wire, item in items:
        if wire == 0:
            values.append(item)
        elif wire == 2:
            at = 0
            while at < len(item):
                value, at = _read_varint(item, at)
                values.append(value)
    return [value - _UINT64 if value >= _UINT64 // 2 else value for value in values]


def _read_feature(feature: memoryview) -> tuple[str, list]:
    """One `tf.train.Feature`: its kind and values; of several lists, the last, as protobuf's
    oneof keeps it. Bytes values are views; float values are not read (no key of Backdrop's holds
    floats)."""
    kind, values = "empty", []
    for number, wire, value in _fields(feature):
        if wire != 2 or number not in _KINDS:
            continue  # an unknown field, skipped
        kind = _KINDS[number]
        items = [(w, item) for n, w, item in _fields(value) if n == 1]
        if kind == "bytes":
            values = [item for w, item in items if w == 2]
        else:
            values = _int64s(items) if kind == "int64" else []
    return kind, values


def decode_features(serialized: bytes) -> dict[str, tuple[str, list]]:
    """The `Features` map of one serialized `tf.train.Example`, read without TensorFlow, unknown
    fields skipped by their wire type: key -> (kind: "bytes", "int64", "float" or "empty",
    values). Bytes values are `memoryview`s of `serialized` (nothing is copied); a key given
    twice keeps its last value, as protobuf's maps do.

    Raises:
        ExampleFormatError: a varint or length runs past the bytes that are there, or a key is not
            UTF-8.
    """
    features = {}
    for number, wire, message in _fields(memoryview(serialized)):
        if (number, wire) != (1, 2):  # Example.features (1)
            continue
        for number, wire, entry in _fields(message):
            if (number, wire) != (1, 2):  # Features.feature (1), a map entry
                continue
            key, feature = b"", memoryview(b"")
            for number, wire, value in _fields(entry):
                if (number, wire) == (1, 2):  # the entry's key
                    key = value
                elif (number, wire) == (2, 2):  # its value, a Feature
                    feature = value
            try:
                name = bytes(key).decode()
            except UnicodeDecodeError:
                raise ExampleFormatError("a feature's key is not UTF-8") from None
            features[name] = _read_feature(feature)
    return features
