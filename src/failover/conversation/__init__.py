"""One request language for every provider: OpenAI Chat Completions or Anthropic Messages in,
each endpoint's own valid form out, and every answer back in one normalized shape.

The provider adapters use it in two steps::

    request = parse_request(messages, params)          # once per call
    kwargs = to_anthropic_kwargs(request, model)        # native Anthropic path
    kwargs = to_openai_kwargs(request)                  # LiteLLM path
    answer = answer_from_anthropic(message)             # or answer_from_openai(response)

Nothing here imports an SDK at import time.
"""

from ._answer import (
    Answer,
    ToolCallBuffer,
    answer_from_anthropic,
    answer_from_openai,
    anthropic_usage,
    finish_reason,
    openai_usage,
    parse_arguments,
)
from ._anthropic import THINKING_BUDGETS, plain_anthropic_kwargs, to_anthropic_kwargs
from ._model import (
    InvalidRequest,
    Message,
    Part,
    Request,
    RequestTranslationError,
    ToolChoice,
    UnsupportedRequest,
)
from ._openai import to_openai_kwargs
from ._parse import parse_request

__all__ = [
    "THINKING_BUDGETS",
    "Answer",
    "InvalidRequest",
    "Message",
    "Part",
    "Request",
    "RequestTranslationError",
    "ToolCallBuffer",
    "ToolChoice",
    "UnsupportedRequest",
    "answer_from_anthropic",
    "answer_from_openai",
    "anthropic_usage",
    "finish_reason",
    "openai_usage",
    "parse_arguments",
    "parse_request",
    "plain_anthropic_kwargs",
    "to_anthropic_kwargs",
    "to_openai_kwargs",
]
