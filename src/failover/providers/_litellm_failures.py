"""How a litellm exception is classified: which :class:`Failure` it stands for.

litellm folds most failures into a few HTTP-like classes (a refused connection is an
``APIConnectionError`` with status 500, a timeout a ``Timeout`` with status 408), so the
exception chain, not the status, tells them apart.
"""

from __future__ import annotations

import asyncio
import json
import os
import re

from .._failures import Failure, FailureKind, failure_from_status, meaning_of, status_for_error_type
from ._base import ProviderRequest
from ._encode import encoding_detail

# As in _litellm: no network fetch of the model cost map at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm

__all__ = ["classify"]


def _headers(exc: BaseException) -> dict[str, str]:
    headers = getattr(exc, "litellm_response_headers", None)
    if headers is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
    try:
        return {str(k).lower(): str(v) for k, v in dict(headers or {}).items()}
    except (TypeError, ValueError):
        return {}


def classify(exc: BaseException, call: ProviderRequest | None = None) -> Failure:
    """Map an exception from litellm to a :class:`Failure`.

    litellm reports a refused connection as ``APIConnectionError`` with status 500, and a
    timeout as ``Timeout`` with status 408: both are mapped back to "no response came".
    An in-process failure (no key, a request that cannot be encoded, a parameter this
    provider does not take) is told apart by the exception chain, since litellm
    reports those as HTTP 500 or 400 too. Details are redacted by the adapter.
    """
    if isinstance(exc, (litellm.exceptions.Timeout, TimeoutError, asyncio.TimeoutError)):
        return Failure("timeout", detail="timed out")
    early = _in_process(exc, call)
    if early is not None:
        return early
    if isinstance(exc, litellm.exceptions.APIConnectionError) or _no_response(exc):
        if isinstance(exc, litellm.exceptions.MidStreamFallbackError) and _malformed(exc):
            return Failure("server", detail="the stream sent an event that is not JSON")
        return Failure("connect", detail="connection error")
    if isinstance(exc, litellm.exceptions.MidStreamFallbackError):
        # An error event inside the stream: its type says what it stands for
        # (overloaded_error = 529...), as for Anthropic's own SDK.
        status = status_for_error_type(_error_type(exc))
        if status is not None:
            return failure_from_status(status, detail=f"error event: {_error_type(exc)}")
        return Failure("stream_cut", detail="stream broke")
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        message = _message(exc)
        kind = _kind_by_class(exc) or meaning_of(status, _error_type(exc), message)
        return failure_from_status(status, headers=_headers(exc), detail=message, kind=kind)
    return Failure("unknown", detail=type(exc).__name__)


def _message(exc: BaseException) -> str:
    # litellm prefixes its messages with class names ("litellm.BadRequestError: ...").
    message = str(getattr(exc, "message", "") or "")
    return re.sub(r"^(litellm\.\w+: )+(\w+: )?", "", message)


def _kind_by_class(exc: BaseException) -> FailureKind | None:
    errors = litellm.exceptions
    if isinstance(exc, errors.ContextWindowExceededError):
        return "context_window"
    if isinstance(exc, errors.ContentPolicyViolationError):
        return "content_filter"
    if isinstance(exc, errors.UnsupportedParamsError):
        return "unsupported"
    return None


def _in_process(exc: BaseException, call: ProviderRequest | None) -> Failure | None:
    """The failure of a request that never left the process, or ``None``."""
    if isinstance(exc, ImportError):
        return Failure("misconfigured", detail=f"a module litellm needs is missing: {exc.name}")
    for cause in _chain(exc):
        text = str(cause)
        if "Missing credentials" in text or re.search(r"(?i)missing \w+ api key", text):
            return Failure("misconfigured", detail="no API key: set api_key (or the SDK's env var)")
        if isinstance(cause, litellm.exceptions.UnsupportedParamsError):
            return Failure("unsupported", status_code=None, detail=_message(cause))
        detail = encoding_detail(cause, call) if _sent_nothing(cause) else None
        if detail is not None:
            return Failure("invalid_request", detail=detail)
    return None


def _sent_nothing(exc: BaseException) -> bool:
    """A bare ValueError/TypeError (not an HTTP error wrapping a response)."""
    return isinstance(exc, (ValueError, TypeError)) and getattr(exc, "response", None) is None


def _malformed(exc: BaseException) -> bool:
    return any(isinstance(cause, json.JSONDecodeError) for cause in _chain(exc)) or (
        "Unterminated string" in str(exc) or "Expecting value" in str(exc)
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 20:
        seen.append(current)
        original = getattr(current, "original_exception", None)
        if isinstance(original, BaseException) and all(original is not s for s in seen):
            seen.append(original)
        current = current.__cause__ or current.__context__
    return seen


def _error_type(exc: BaseException) -> str | None:
    """The provider's error ``type`` somewhere in the exception chain, if it gave one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for candidate in (current, getattr(current, "original_exception", None)):
            kind = getattr(candidate, "type", None)
            if isinstance(kind, str) and kind.endswith("_error"):
                return kind
            body = getattr(candidate, "body", None)
            if isinstance(body, dict):
                nested = body.get("error", body)
                kind = nested.get("type") if isinstance(nested, dict) else None
                if isinstance(kind, str):
                    return kind
        current = current.__cause__ or current.__context__
    return None


def _no_response(exc: BaseException) -> bool:
    """Whether a litellm error stands for "no response came" (refused, reset, DNS).

    litellm wraps openai's ``APIConnectionError`` as ``InternalServerError`` with status
    500; only the exception chain tells it from a real 500.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ in ("APIConnectionError", "ConnectError", "ReadError"):
            return True
        if isinstance(current, (ConnectionError, OSError)) and not isinstance(
            current, TimeoutError
        ):
            return True
        current = current.__cause__ or current.__context__
    return False
