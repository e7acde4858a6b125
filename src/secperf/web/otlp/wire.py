"""OTLP/HTTP on the wire: content types, gzip within bounds, decoding, answers.

Both encodings go through the generated protobuf classes of
``opentelemetry-proto`` (JSON through ``json_format.Parse``), so one mapping
serves both. Those classes are imported on first use: the CLI's light
commands never pay for protobuf.

Answers follow the OTLP/HTTP specification: success is an
``ExportMetricsServiceResponse`` (with ``partial_success`` when points were
left out), a failure a ``google.rpc.Status``, each in the request's encoding.
A JSON failure also carries secperf's own error shape under ``error``, so a
client of the rest of the API reads it as it reads every other error.
"""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
CONTENT_TYPES = (PROTOBUF, JSON)

#: google.rpc.Code of each HTTP status an OTLP answer may carry.
_RPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    503: 14,  # UNAVAILABLE
}
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class WireError(Exception):
    """A request refused before its content is mapped: HTTP status, message, where."""

    def __init__(self, status: int, message: str, where: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where


def content_type(header: str | None) -> str:
    """The request's encoding (``PROTOBUF`` or ``JSON``); 415 for anything else."""
    media = (header or "").split(";", 1)[0].strip().lower()
    if media in CONTENT_TYPES:
        return media
    shown = f"{media!r}" if media else "no Content-Type"
    raise WireError(
        415, f"{shown} is not an OTLP encoding; send {PROTOBUF} or {JSON}", "header.content-type"
    )


def answer_type(header: str | None) -> str:
    """The encoding of the answer: the request's when known, else JSON."""
    media = (header or "").split(";", 1)[0].strip().lower()
    return media if media in CONTENT_TYPES else JSON


def is_gzip(header: str | None) -> bool:
    """Whether the body is gzip-compressed; 415 for a coding other than gzip or identity."""
    coding = (header or "identity").strip().lower()
    if coding in ("", "identity"):
        return False
    if coding in ("gzip", "x-gzip"):
        return True
    raise WireError(
        415,
        f"Content-Encoding {coding!r} is not supported; send gzip or identity",
        "header.content-encoding",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (declared or counted)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WireError(413, f"the body is {declared} bytes; at most {limit} are accepted", "body")
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise WireError(413, f"the body is over {limit} bytes, the most accepted", "body")
    return bytes(chunks)


def gunzip(data: bytes, limit: int) -> bytes:
    """``data`` decompressed a bounded piece at a time: 413 past ``limit`` bytes, 400 if bad.

    Never holds more than ``limit`` + one piece of output, so a small body
    that inflates to gigabytes (a gzip bomb) costs nothing but the refusal.
    """
    out = bytearray()
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(_GZIP_WBITS)
            pending = rest
            while pending and not inflater.eof:
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise WireError(
                        413, f"the body inflates to more than {limit} bytes, the most accepted"
                    )
                pending = inflater.unconsumed_tail
            if not inflater.eof:
                raise WireError(400, "the gzip body is truncated", "body")
            # Another gzip member may follow (concatenated members are one stream).
            rest = inflater.unused_data
    except zlib.error as exc:
        raise WireError(400, f"the body is not valid gzip ({exc})", "body") from None
    return bytes(out)


def parse(body: bytes, encoding: str) -> ExportMetricsServiceRequest:
    """The ``ExportMetricsServiceRequest`` in ``body``; 400 naming the problem if it is none."""
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    message = ExportMetricsServiceRequest()
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise WireError(
                400, f"not an OTLP protobuf ExportMetricsServiceRequest: {exc}", "body"
            ) from None
        return message
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireError(400, f"the JSON body is not UTF-8 (byte {exc.start})", "body") from None
    try:
        document = json.loads(text)
    except (RecursionError, ValueError) as exc:
        raise WireError(400, f"the body is not JSON: {exc}", "body") from None
    if not isinstance(document, dict):
        raise WireError(
            400,
            f"the body must be a JSON object (an ExportMetricsServiceRequest), "
            f"not {type(document).__name__}",
            "body",
        )
    try:
        # Unknown fields are ignored, as the OTLP/JSON specification asks of receivers.
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise WireError(
            400, f"not an OTLP/JSON ExportMetricsServiceRequest: {exc}", "body"
        ) from None
    except (RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise WireError(
            400, f"the JSON body could not be read: {type(exc).__name__}", "body"
        ) from None
    return message


def success_body(encoding: str, rejected: int, message: str) -> bytes:
    """An ``ExportMetricsServiceResponse`` (partial success when ``rejected``)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceResponse,
    )

    response = ExportMetricsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_data_points = rejected
        response.partial_success.error_message = message
    if encoding == PROTOBUF:
        return response.SerializeToString()
    return json_format.MessageToJson(response, indent=None).encode("utf-8")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def status_body(encoding: str, status: int, code: str, message: str, where: str | None) -> bytes:
    """A ``google.rpc.Status`` for an HTTP failure, in ``encoding``.

    Written by hand (two fields) rather than through googleapis' generated
    classes, which secperf would otherwise depend on for this alone.
    """
    rpc_code = _RPC_CODES.get(status, 13 if status >= 500 else 3)
    if encoding == PROTOBUF:
        encoded = message.encode("utf-8")
        return b"\x08" + _varint(rpc_code) + b"\x12" + _varint(len(encoded)) + encoded
    body: dict[str, Any] = {
        "code": rpc_code,
        "message": message,
        "error": {"code": code, "message": message, "where": where},
    }
    return json.dumps(body).encode("utf-8")
