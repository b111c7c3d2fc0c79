"""How an exception from the anthropic SDK (or httpx2 under it) is classified: which
:class:`Failure` it stands for, and a timeout named by when it struck."""

from __future__ import annotations

import dataclasses
import json

import anthropic
import httpx2

from .. import _deadline
from .._failures import Failure, failure_from_status, meaning_of, status_for_error_type
from ._base import ProviderRequest
from ._encode import encoding_detail

__all__ = ["classify", "timing_kind"]


def classify(exc: BaseException, call: ProviderRequest | None = None) -> Failure:
    """Map an exception from the anthropic SDK (or httpx2 under it) to a :class:`Failure`.

    ``call``, when given, lets an encoding error name the parameter at fault. Details
    are not yet redacted here: the adapter passes them through :func:`redact_for`.
    """
    if isinstance(exc, anthropic.APITimeoutError):
        return Failure("timeout", detail="timed out")
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        name = type(cause).__name__ if cause is not None else "connection error"
        return Failure("connect", detail=name)
    if isinstance(exc, anthropic.APIStatusError):
        return _status_failure(exc)
    if isinstance(exc, httpx2.TimeoutException):
        return Failure("timeout", detail=type(exc).__name__)
    if isinstance(exc, httpx2.TransportError):
        return Failure("stream_cut", detail=type(exc).__name__)
    if _missing_key(exc):
        return Failure("misconfigured", detail="no API key: set api_key or ANTHROPIC_API_KEY")
    if isinstance(exc, json.JSONDecodeError):  # a response body or event that is not JSON
        return Failure("server", detail="the response is not valid JSON")
    detail = encoding_detail(exc, call)
    if detail is not None:  # the request cannot be encoded: nothing was sent
        return Failure("invalid_request", detail=detail)
    return Failure("unknown", detail=type(exc).__name__)


def _status_failure(exc: anthropic.APIStatusError) -> Failure:
    status = exc.status_code
    error_type = getattr(exc, "type", None)
    if status < 400:
        # An error event inside a 200 stream: its type says what it stands for.
        status = status_for_error_type(error_type) or 500
    message = str(getattr(exc, "api_message", None) or "")
    detail = f"{error_type or f'HTTP {status}'}: {message}" if message else error_type or ""
    return failure_from_status(
        status,
        headers=exc.response.headers,
        detail=detail,
        request_id=exc.request_id,
        kind=meaning_of(status, error_type, message),
    )


def _missing_key(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not resolve authentication method" in text or (
        isinstance(exc, anthropic.AnthropicError)
        and not isinstance(exc, anthropic.APIError)
        and "api_key" in text
    )


def timing_kind(failure: Failure, *, streamed: bool) -> Failure:
    """Name a timeout by when it struck: a stream's gap, the route's deadline, or a read."""
    if failure.kind != "timeout":
        return failure
    if streamed:
        return dataclasses.replace(failure, kind="stream_idle")
    left = _deadline.remaining()
    if left is not None and left <= 0.002:
        return dataclasses.replace(failure, kind="deadline", detail="deadline reached")
    return failure
