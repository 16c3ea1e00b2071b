"""The errors a service raises, each tied to one gRPC status code, and their wire form.

Handlers raise these; the service boundary (common/grpc_handlers.py) is the one place that turns
them into a gRPC status with rich details (google.rpc.BadRequest, google.rpc.ErrorInfo).
Anything else that escapes a handler becomes INTERNAL with no detail for the caller.

    ServiceError
     ├── InvalidArgument        400  (with field violations)
     ├── FailedPrecondition     400
     ├── OutOfRange             400
     ├── PermissionDenied       403
     ├── NotFound               404
     ├── AlreadyExists          409
     ├── Aborted                409  (with RetryInfo when it is worth waiting)
     ├── Unavailable            503
     ├── DeadlineExceeded       504
     └── StoredError            any: an answer stored under an idempotency key, sent again
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

STATUS_DETAILS_KEY = "grpc-status-details-bin"
REPLAYED_KEY = "idempotent-replayed"
ERROR_DOMAIN = "shop.example"
_CODES = {code.value[0]: code for code in grpc.StatusCode}

M = TypeVar("M", bound=Message)


class ServiceError(Exception):
    code = grpc.StatusCode.INTERNAL
    # True for an answer stored earlier under an idempotency key (see StoredError).
    replayed = False

    def __init_subclass__(cls, code: grpc.StatusCode | None = None, **kwargs: object) -> None:
        """`class NotFound(ServiceError, code=grpc.StatusCode.NOT_FOUND)`: a subclass names its code."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.violations = tuple(violations)
        self.reason = reason
        self.retry_after_s = retry_after_s

    def to_status(self) -> status_pb2.Status:
        details: list[any_pb2.Any] = []
        if self.violations:
            bad_request = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in self.violations
                ]
            )
            details.append(pack_detail(bad_request))
        if self.reason:
            details.append(pack_detail(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN)))
        if self.retry_after_s is not None:
            delay = duration_pb2.Duration(seconds=self.retry_after_s)
            details.append(pack_detail(error_details_pb2.RetryInfo(retry_delay=delay)))
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=details)


class InvalidArgument(ServiceError, code=grpc.StatusCode.INVALID_ARGUMENT): ...


class FailedPrecondition(ServiceError, code=grpc.StatusCode.FAILED_PRECONDITION): ...


class OutOfRange(ServiceError, code=grpc.StatusCode.OUT_OF_RANGE): ...


class PermissionDenied(ServiceError, code=grpc.StatusCode.PERMISSION_DENIED): ...


class NotFound(ServiceError, code=grpc.StatusCode.NOT_FOUND): ...


class AlreadyExists(ServiceError, code=grpc.StatusCode.ALREADY_EXISTS): ...


class Aborted(ServiceError, code=grpc.StatusCode.ABORTED): ...


class Unavailable(ServiceError, code=grpc.StatusCode.UNAVAILABLE):
    """Nothing was decided; try again shortly. Says when (RetryInfo: the gateway's Retry-After),
    one second unless told otherwise: an outage of a database or a service is seconds long, and
    a client that waits for it should not wait much longer than it."""

    def __init__(
        self,
        message: str,
        *,
        violations: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
        retry_after_s: int | None = 1,
    ) -> None:
        super().__init__(message, violations=violations, reason=reason, retry_after_s=retry_after_s)


class DeadlineExceeded(ServiceError, code=grpc.StatusCode.DEADLINE_EXCEEDED): ...


class StoredError(ServiceError):
    """An error answered earlier under an idempotency key, sent again exactly as it was."""

    replayed = True

    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.code = _CODES.get(status.code, grpc.StatusCode.UNKNOWN)
        self._status = status

    def to_status(self) -> status_pb2.Status:
        return self._status


def pack_detail(message: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def metadata_value(metadata: object, key: str) -> str | bytes | None:
    """One value of gRPC metadata (a sequence of key/value pairs), or None."""
    for item_key, value in metadata or ():  # type: ignore[attr-defined]
        if item_key == key:
            return value  # type: ignore[no-any-return]
    return None


def rich_status(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    """The google.rpc.Status that one of our services sent with an error; None when the gRPC
    library made the error up (a refused connection, a deadline) and no service was heard."""
    value = metadata_value(error.trailing_metadata(), STATUS_DETAILS_KEY)
    return status_pb2.Status.FromString(value) if isinstance(value, bytes) else None


def field_violations(status: status_pb2.Status | None) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if status is None:
        return found
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found.extend((v.field, v.description) for v in bad_request.field_violations)
    return found


def _detail(status: status_pb2.Status | None, kind: type[M]) -> M | None:
    for detail in status.details if status is not None else ():
        found = kind()
        if detail.Unpack(found):
            return found
    return None


def error_reason(status: status_pb2.Status | None) -> str | None:
    info = _detail(status, error_details_pb2.ErrorInfo)
    return None if info is None else str(info.reason)


def retry_after_s(status: status_pb2.Status | None) -> int | None:
    """The RetryInfo delay a service sent, in whole seconds (at least 1)."""
    info = _detail(status, error_details_pb2.RetryInfo)
    return None if info is None else max(1, info.retry_delay.seconds + (info.retry_delay.nanos > 0))


def original_request_id(status: status_pb2.Status | None) -> str | None:
    """For a replayed error: the request id of the request that first got it."""
    info = _detail(status, error_details_pb2.RequestInfo)
    return None if info is None or not info.request_id else str(info.request_id)
