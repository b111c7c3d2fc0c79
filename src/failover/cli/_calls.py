"""The ``failover`` subcommands that make calls: ``complete``, ``status`` and ``demo``.

Declared like the others in ``_cli`` (an ``_add_`` and a ``_run_`` function each); they
import the router, and through it the provider SDKs, only when they run.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

from .._errors import FailoverError, RequestError
from .._response import Response
from ._main import DEFAULT_POLICY, ENV_POLICY, Subparsers, load_policy

__all__ = ["add_complete", "add_demo", "add_status"]


def _policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        help=f"the policy file (default: ${ENV_POLICY}, else ./{DEFAULT_POLICY})",
    )


# --- complete -----------------------------------------------------------------------------


def add_complete(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Declare ``failover complete``."""
    parser = subparsers.add_parser(
        "complete",
        help="send one prompt through a route and print the answer",
        description="Send PROMPT through a route of the policy and print the answer.",
    )
    _policy_option(parser)
    parser.add_argument("-r", "--route", help="the route (default: the policy's default)")
    parser.add_argument("--max-tokens", type=int, default=1024, metavar="N")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument(
        "--json", action="store_true", help="print the response and attempts as JSON"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the router does")
    parser.add_argument("prompt", metavar="PROMPT", help='the prompt; "-" reads standard input')
    parser.set_defaults(run=_run_complete)


def _response_json(resp: Response) -> dict[str, Any]:
    return {
        "text": resp.text,
        "endpoint": resp.endpoint,
        "provider": resp.provider,
        "model": resp.model,
        "from_cache": resp.from_cache,
        "cache_age": resp.cache_age,
        "latency": round(resp.latency, 6),
        "stop_reason": resp.stop_reason,
        "usage": {
            "input_tokens": resp.usage.input_tokens,
            "output_tokens": resp.usage.output_tokens,
        },
        "attempts": [_attempt_json(a) for a in resp.attempts],
    }


def _attempt_json(attempt: Any) -> dict[str, Any]:
    return {
        "endpoint": attempt.endpoint,
        "outcome": attempt.outcome,
        "error": attempt.error,
        "status_code": attempt.status_code,
        "latency": round(attempt.latency, 6),
        "retry": attempt.retry,
    }


def _run_complete(args: argparse.Namespace) -> int:
    from .._router import Router

    policy = load_policy(args.config)
    if isinstance(policy, int):
        return policy
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    if args.verbose:
        _log_verbosely()
    messages: list[dict[str, Any]] = []
    if args.system:
        messages.append({"role": "system", "content": args.system})
    messages.append({"role": "user", "content": prompt})
    with Router(policy) as router:
        try:
            resp = router.complete(messages, route=args.route, max_tokens=args.max_tokens)
        except FailoverError as exc:
            return _report_failure(exc, args.json)
    if args.json:
        print(json.dumps(_response_json(resp), indent=2))
    else:
        print(resp.text)
        if resp.from_cache:
            print(f"(served from the cache, {resp.cache_age:.0f} s old)", file=sys.stderr)
    return 0


def _report_failure(exc: FailoverError, as_json: bool) -> int:
    if as_json:
        body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
        attempts = getattr(exc, "attempts", ())
        body["attempts"] = [_attempt_json(a) for a in attempts]
        if isinstance(exc, RequestError):
            body["status_code"] = exc.status_code
        print(json.dumps(body, indent=2))
    else:
        print(f"failover: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 1


# --- status -------------------------------------------------------------------------------


def add_status(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Declare ``failover status``."""
    parser = subparsers.add_parser(
        "status",
        help="print each endpoint's breaker state",
        description="Print each endpoint's breaker state, failure counts and timing.",
    )
    _policy_option(parser)
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    parser.set_defaults(run=_run_status)


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


def _run_status(args: argparse.Namespace) -> int:
    from .._router import Router

    policy = load_policy(args.config)
    if isinstance(policy, int):
        return policy
    router = Router(policy, listeners=())
    rows = router.status()
    if args.json:
        print(json.dumps([_row(row) for row in rows], indent=2))
        return 0
    if policy.state.kind == "memory":
        print("state: memory (each process keeps its own breakers; this shows a fresh one)")
    print(
        f"{'endpoint':<18}{'state':<11}{'shared':<10}{'fails':>6}{'window':>9}{'opened':>10}"
        f"{'retry':>10}{'p50':>9}{'p95':>9}{'p99':>9}  recent errors"
    )
    for row in rows:
        window = f"{row.window_failures}/{row.window_calls}"
        print(
            f"{row.name:<18}{row.state:<11}{row.shared:<10}{row.consecutive_failures:>6}"
            f"{window:>9}{_when(row.opened_at):>10}{_when(row.retry_at):>10}"
            f"{_ms(row.latency_p50):>9}{_ms(row.latency_p95):>9}{_ms(row.latency_p99):>9}"
            f"  {_errors(row.recent_errors)}"
        )
    return 0


def _row(row: Any) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in row.__slots__}


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Mapping) else value


def _errors(errors: Mapping[str, int]) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in sorted(errors.items())) or "-"


# --- demo ---------------------------------------------------------------------------------


def add_demo(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    """Declare ``failover demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="watch a scripted outage against local fake providers (no keys needed)",
        description="Start local fake providers behind a three-endpoint route, break the"
        " primary (refused, then blackholed, then recovered) and narrate what the router does.",
    )
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from ._demo import run

    return run()


class _MaskUrls(logging.Filter):
    """Masks URL passwords (``redis://:pw@host``) in a record's message and arguments."""

    _URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"]+", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        from ..policy._fields import redact_url

        message = record.getMessage()
        masked = self._URL.sub(lambda m: redact_url(m.group(0)), message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def _log_verbosely() -> None:
    """``-v``: the ``failover`` logger's INFO records on stderr, URL passwords masked.

    Only the ``failover`` logger: the root logger's INFO would also turn on the HTTP
    clients' records, which may name URLs with their credentials.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(_MaskUrls())
    log = logging.getLogger("failover")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
