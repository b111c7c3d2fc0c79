"""A FastAPI service answering through failover: JSON, and server-sent-event streams.

Run it::

    pip install fastapi uvicorn 'failover[litellm]'
    export ANTHROPIC_API_KEY=... OPENAI_API_KEY=... GEMINI_API_KEY=...
    FAILOVER_CONFIG=examples/three_providers.yaml uvicorn examples.fastapi_app:app

    curl -s localhost:8000/chat -H 'content-type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "Hello"}]}'
    curl -sN localhost:8000/chat/stream -H 'content-type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "Tell me a story"}]}'
    curl -s localhost:8000/chat/tools -H 'content-type: application/json' \\
        -d '{"messages": [{"role": "user", "content": "Weather in Paris?"}]}'

``/chat/tools`` runs a tool loop: each turn may land on a different endpoint (Claude for
the first, OpenAI for the next when Claude is overloaded) and the conversation goes on,
tool ids and all, because failover translates it for each provider.

How failover's outcomes become HTTP:

- an answer, or one served from the route's fallback cache -> 200 (``"from_cache": true``)
- ``RequestError`` (the provider rejected the request itself) -> its status: 400, 413, 422
- ``RouteNotFound`` -> 404
- ``AllEndpointsFailed`` -> 503, ``DeadlineExceeded`` -> 504, each with the attempts made;
  a ``retry-after`` header when every endpoint's breaker is open
- a stream that breaks after text was sent: the status line has gone already, so the
  stream ends with an ``error`` event instead of ``done``; the client must discard the
  partial answer (or show it as cut off). It is never passed off as complete.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from failover import (
    AllEndpointsFailed,
    DeadlineExceeded,
    RequestError,
    Response,
    RouteNotFound,
    Router,
    StreamInterrupted,
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One Router for the whole process: its breakers must see every request."""
    router = Router.from_yaml(os.environ.get("FAILOVER_CONFIG", "routes.yaml"))
    # Builds every route now, importing the provider SDKs (a second or more), so that
    # the first request does not pay for it.
    router.status()
    app.state.router = router
    try:
        yield
    finally:
        await router.aclose()


app = FastAPI(title="failover example", lifespan=lifespan)


def get_router(request: Request) -> Router:
    """The app's Router, as a dependency."""
    router: Router = request.app.state.router
    return router


RouterDep = Annotated[Router, Depends(get_router)]


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    messages: list[Message] = Field(min_length=1)
    route: str | None = None  # None: the policy's default_route
    max_tokens: int = Field(default=1024, ge=1, le=32_000)


class Usage(BaseModel):
    input_tokens: int | None  # None: the provider did not say
    output_tokens: int | None


class ChatAnswer(BaseModel):
    text: str
    endpoint: str  # for a cached answer: the endpoint that produced it
    model: str
    from_cache: bool
    cache_age: float | None  # seconds, for a cached answer
    stop_reason: str | None
    usage: Usage
    attempts: list[str]  # one line per try: endpoint, outcome, error kind, status


def _messages(body: ChatRequest) -> list[dict[str, Any]]:
    return [m.model_dump() for m in body.messages]


def _answer(resp: Response) -> ChatAnswer:
    return ChatAnswer(
        text=resp.text,
        endpoint=resp.endpoint,
        model=resp.model,
        from_cache=resp.from_cache,
        cache_age=resp.cache_age,
        stop_reason=resp.stop_reason,
        usage=Usage(input_tokens=resp.usage.input_tokens, output_tokens=resp.usage.output_tokens),
        attempts=[a.describe() for a in resp.attempts],
    )


@app.post("/chat")
async def chat(body: ChatRequest, router: RouterDep) -> ChatAnswer:
    """Answer in one piece. Failures become 4xx/5xx through the handlers below."""
    resp = await router.acomplete(_messages(body), route=body.route, max_tokens=body.max_tokens)
    return _answer(resp)


@app.post("/chat/stream")
async def chat_stream(body: ChatRequest, router: RouterDep) -> StreamingResponse:
    """Stream the answer as server-sent events: ``delta``..., then ``done`` or ``error``."""
    events = _sse(router, body)
    # Wait for the first event before answering: until text arrives, failures (every
    # endpoint down, the deadline, a rejected request) still raise here, and the handlers
    # below turn them into a proper status code instead of a 200 with an error inside.
    try:
        first = await anext(events)
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        _chain(first, events),
        media_type="text/event-stream",
        headers={"cache-control": "no-store"},
    )


async def _sse(router: Router, body: ChatRequest) -> AsyncGenerator[str, None]:
    stream = router.astream(_messages(body), route=body.route, max_tokens=body.max_tokens)
    async with stream:
        try:
            async for text in stream:
                yield _event("delta", {"text": text})
        except StreamInterrupted as exc:
            # Text has reached the client already: say in-band that it is incomplete.
            yield _event(
                "error",
                {
                    "error": "stream_interrupted",
                    "message": "the answer was cut off; discard or mark the partial text",
                    "received_chars": len(exc.partial_text),
                    "attempts": [a.describe() for a in exc.attempts],
                },
            )
            return
    resp = stream.response
    assert resp is not None  # set once the stream is read to its end
    yield _event("done", _answer(resp).model_dump(exclude={"text"}))  # text went as deltas


async def _chain(first: str, rest: AsyncGenerator[str, None]) -> AsyncIterator[str]:
    try:
        yield first
        async for event in rest:
            yield event
    finally:
        # A client that disconnects mid-stream: close the provider stream now and hand
        # back the endpoint's breaker permit, rather than when the generator is collected.
        await rest.aclose()


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


# --- a tool loop that survives a failover mid-conversation -----------------------------
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def get_weather(city: str = "") -> dict[str, Any]:
    """A stand-in for a real weather service."""
    return {"city": city, "temperature_c": 18, "sky": "sunny"}


TOOLS = {"get_weather": get_weather}


class ToolChatRequest(BaseModel):
    # OpenAI or Anthropic format; a client may send back the conversation it was given.
    messages: list[dict[str, Any]] = Field(min_length=1)
    route: str | None = None
    max_tokens: int = Field(default=1024, ge=1, le=32_000)
    max_turns: int = Field(default=6, ge=1, le=20)


class ToolAnswer(BaseModel):
    answer: ChatAnswer  # the last turn's answer
    turns: list[str]  # the endpoint that answered each turn
    messages: list[dict[str, Any]]  # the whole conversation, to continue it later


@app.post("/chat/tools")
async def chat_tools(body: ToolChatRequest, router: RouterDep) -> ToolAnswer:
    """Answer, calling tools until the model is done (or ``max_turns`` runs out)."""
    messages = list(body.messages)
    turns: list[str] = []
    for _ in range(body.max_turns):
        resp = await router.acomplete(
            messages, route=body.route, tools=[WEATHER_TOOL], max_tokens=body.max_tokens
        )
        turns.append(resp.endpoint)
        messages.append(resp.message)  # text, tool calls and signed thinking, ready to resend
        if resp.finish_reason != "tool_calls":
            break
        for call in resp.tool_calls:
            tool = TOOLS.get(call.name)
            result = tool(**call.arguments) if tool else {"error": f"no tool {call.name!r}"}
            reply = {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
            messages.append(reply)
    return ToolAnswer(answer=_answer(resp), turns=turns, messages=messages)


# --- failover's errors as HTTP responses -----------------------------------------------
# The bodies name endpoints, failure kinds and statuses; never a key or the prompt.
@app.exception_handler(RequestError)
async def _rejected(request: Request, exc: RequestError) -> JSONResponse:
    # The provider rejected the request itself (too long, a bad parameter): retrying it
    # elsewhere would not help, the client must change it.
    return JSONResponse(
        {"error": "request_rejected", "message": str(exc), "upstream_status": exc.status_code},
        status_code=exc.status_code or 400,
    )


@app.exception_handler(RouteNotFound)
async def _no_route(request: Request, exc: RouteNotFound) -> JSONResponse:
    return JSONResponse({"error": "route_not_found", "message": str(exc)}, status_code=404)


@app.exception_handler(DeadlineExceeded)
async def _deadline(request: Request, exc: DeadlineExceeded) -> JSONResponse:
    return _unavailable(request, "deadline_exceeded", exc, 504)


@app.exception_handler(AllEndpointsFailed)
async def _all_failed(request: Request, exc: AllEndpointsFailed) -> JSONResponse:
    return _unavailable(request, "all_endpoints_failed", exc, 503)


def _unavailable(
    request: Request, error: str, exc: AllEndpointsFailed, status: int
) -> JSONResponse:
    content = {"error": error, "route": exc.route, "attempts": [a.describe() for a in exc.attempts]}
    retry_after = _retry_after(get_router(request), exc)
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    return JSONResponse(content, status_code=status, headers=headers)


def _retry_after(router: Router, exc: AllEndpointsFailed) -> int | None:
    """Seconds until an open breaker of the route admits a trial call again.

    Only when every endpoint the call met has its breaker open (skipped, or its panic
    trial failed): an endpoint that failed on its own may well answer the next request.
    """
    if not exc.attempts:
        return None
    breakers = {s.name: s for s in router.status()}
    retry_at = []
    for endpoint in {a.endpoint for a in exc.attempts}:
        # A route that overrides the breaker settings has its own: "endpoint@route".
        breaker = breakers.get(f"{endpoint}@{exc.route}") or breakers.get(endpoint)
        if breaker is None or breaker.state != "open" or breaker.retry_at is None:
            return None
        retry_at.append(breaker.retry_at)
    return max(1, math.ceil(min(retry_at) - time.time()))
