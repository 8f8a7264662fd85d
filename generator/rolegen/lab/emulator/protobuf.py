"""A small decoder for `application/vnd.kubernetes.protobuf` request bodies.

client-go clients built with the protobuf content type (Helm's release storage, its kube client's
DELETE options) send Secret, ConfigMap, Namespace and DeleteOptions bodies as protobuf. The body is
the magic `k8s\\x00` followed by a `runtime.Unknown` message (typeMeta, raw object bytes); the raw
bytes are the object's generated message. Only the fields of those four types are decoded; anything
else is reported as unsupported (the server answers 415). Responses are always JSON, which client-go
accepts because it decodes by the response's Content-Type.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"

# A schema maps field number -> (json name, type). Types: "s" string, "b" bytes (base64 in JSON),
# "i" int, "?" bool, "ss" map<string,string>, "sb" map<string,bytes>, "t" Time, "[s" repeated string,
# a dict = nested message, ("[", dict) = repeated nested message.
Schema = dict[int, tuple[str, Any]]

_TIME = "t"
_OWNER: Schema = {1: ("kind", "s"), 3: ("name", "s"), 4: ("uid", "s"), 5: ("apiVersion", "s"),
                  6: ("controller", "?"), 7: ("blockOwnerDeletion", "?")}
_META: Schema = {1: ("name", "s"), 2: ("generateName", "s"), 3: ("namespace", "s"), 4: ("selfLink", "s"),
                 5: ("uid", "s"), 6: ("resourceVersion", "s"), 7: ("generation", "i"),
                 8: ("creationTimestamp", _TIME), 9: ("deletionTimestamp", _TIME),
                 10: ("deletionGracePeriodSeconds", "i"), 11: ("labels", "ss"), 12: ("annotations", "ss"),
                 13: ("ownerReferences", ("[", _OWNER)), 14: ("finalizers", "[s")}
SCHEMAS: dict[str, Schema] = {
    "ConfigMap": {1: ("metadata", _META), 2: ("data", "ss"), 3: ("binaryData", "sb"), 4: ("immutable", "?")},
    "Secret": {1: ("metadata", _META), 2: ("data", "sb"), 3: ("type", "s"), 4: ("immutable", "?"),
               5: ("stringData", "ss")},
    "Namespace": {1: ("metadata", _META), 2: ("spec", {1: ("finalizers", "[s")}),
                  3: ("status", {1: ("phase", "s")})},
    "DeleteOptions": {1: ("gracePeriodSeconds", "i"),
                      2: ("preconditions", {1: ("uid", "s"), 2: ("resourceVersion", "s")}),
                      3: ("orphanDependents", "?"), 4: ("propagationPolicy", "s"), 5: ("dryRun", "[s")},
}
_UNKNOWN: Schema = {1: ("typeMeta", {1: ("apiVersion", "s"), 2: ("kind", "s")}), 2: ("raw", "raw"),
                    3: ("contentEncoding", "s"), 4: ("contentType", "s")}


class ProtobufError(ValueError):
    """The body is not protobuf this decoder understands."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated field")
            out.append((number, buf[pos:pos + size]))
            pos += size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            out.append((number, int.from_bytes(buf[pos:pos + width], "little")))
            pos += width
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind in ("s", "[s"):
        assert isinstance(value, bytes)
        return value.decode()
    if kind == "b":
        assert isinstance(value, bytes)
        return base64.b64encode(value).decode()
    if kind == "raw":
        return value
    if kind == "i":
        assert isinstance(value, int)
        return _signed(value)
    if kind == "?":
        return bool(value)
    raise ProtobufError(f"unknown scalar kind {kind}")


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, value in _fields(buf):
        if number not in schema:
            continue  # a field this decoder does not model (e.g. managedFields): dropped
        name, kind = schema[number]
        if isinstance(kind, dict):
            assert isinstance(value, bytes)
            obj[name] = decode_message(value, kind)
        elif isinstance(kind, tuple):
            assert isinstance(value, bytes)
            obj.setdefault(name, []).append(decode_message(value, kind[1]))
        elif kind in ("ss", "sb"):
            assert isinstance(value, bytes)
            entry = dict(_fields(value))
            key = entry.get(1, b"")
            assert isinstance(key, bytes)
            obj.setdefault(name, {})[key.decode()] = _scalar("s" if kind == "ss" else "b", entry.get(2, b""))
        elif kind == _TIME:
            assert isinstance(value, bytes)
            seconds = dict(_fields(value)).get(1, 0)
            assert isinstance(seconds, int)
            if seconds:  # gogo-protobuf always writes non-pointer Times; zero means unset
                obj[name] = datetime.fromtimestamp(_signed(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        elif kind == "[s":
            obj.setdefault(name, []).append(_scalar(kind, value))
        elif value not in (0, b""):  # zero values are written too; JSON omits them
            obj[name] = _scalar(kind, value)
    return obj


def decode(body: bytes) -> dict[str, Any]:
    """Decode an enveloped protobuf body into the JSON form of the object."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = decode_message(body[len(MAGIC):], _UNKNOWN)
    type_meta = unknown.get("typeMeta", {})
    kind = type_meta.get("kind", "")
    if kind not in SCHEMAS:
        raise ProtobufError(f"protobuf bodies of kind {kind!r} are not supported; send JSON")
    raw = unknown.get("raw", b"")
    assert isinstance(raw, bytes)
    obj = decode_message(raw, SCHEMAS[kind])
    obj["apiVersion"] = type_meta.get("apiVersion") or "v1"
    obj["kind"] = kind
    return obj


# -- encoding: only what the tests need to build realistic bodies ---------------------------------
def _key(number: int, wire: int) -> bytes:
    return _enc_varint(number << 3 | wire)


def _enc_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _enc_bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + _enc_varint(len(data)) + data


def encode_message(obj: dict[str, Any], schema: Schema) -> bytes:
    out = b""
    for number, (name, kind) in sorted(schema.items()):
        if name not in obj:
            continue
        value = obj[name]
        if isinstance(kind, dict):
            out += _enc_bytes(number, encode_message(value, kind))
        elif isinstance(kind, tuple):
            out += b"".join(_enc_bytes(number, encode_message(v, kind[1])) for v in value)
        elif kind in ("ss", "sb"):
            for k, v in sorted(value.items()):
                raw = base64.b64decode(v) if kind == "sb" else v.encode()
                out += _enc_bytes(number, _enc_bytes(1, k.encode()) + _enc_bytes(2, raw))
        elif kind == "[s":
            out += b"".join(_enc_bytes(number, v.encode()) for v in value)
        elif kind in ("s", "b"):
            out += _enc_bytes(number, value.encode() if kind == "s" else base64.b64decode(value))
        elif kind in ("i", "?"):
            out += _key(number, 0) + _enc_varint(int(value))
    return out


def encode(obj: dict[str, Any]) -> bytes:
    """Envelope `obj` (one of the supported kinds) the way client-go does."""
    kind = obj["kind"]
    raw = encode_message(obj, SCHEMAS[kind])
    type_meta = encode_message({"apiVersion": obj.get("apiVersion", "v1"), "kind": kind},
                               {1: ("apiVersion", "s"), 2: ("kind", "s")})
    return MAGIC + _enc_bytes(1, type_meta) + _enc_bytes(2, raw)
