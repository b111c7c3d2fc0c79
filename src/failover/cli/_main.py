"""The ``failover`` command line.

Each subcommand is a pair of functions: ``_add_<name>(subparsers)`` declares its
arguments and ``_run_<name>(args) -> int`` does the work; :data:`COMMANDS` lists the
declarations, so a new subcommand is one more pair and one more entry. Commands that
need the provider SDKs import them inside their ``_run_`` function: ``check`` and
``schema`` must stay fast (no anthropic, litellm or redis import).

Exit codes: 0 success, 1 invalid policy (or a failed command), 2 usage error or no
policy file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from .._errors import PolicyError
from .._version import __version__
from ..policy._durations import format_duration
from ..policy._extras import missing_extras
from ..policy._fields import redact_url
from ..policy._model import Policy, PolicyFileNotFound, RoutePolicy

__all__ = ["COMMANDS", "main", "policy_path"]

#: Where ``failover`` looks for the policy when no path is given and FAILOVER_CONFIG is unset.
DEFAULT_POLICY = "routes.yaml"
ENV_POLICY = "FAILOVER_CONFIG"

# argparse's own name for what add_subparsers() returns.
Subparsers = argparse._SubParsersAction


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``failover`` command.

    Args:
        argv: the arguments after the program name; ``None`` reads ``sys.argv[1:]``.

    Returns:
        The exit status: 0 success, 1 invalid policy or failed command, 2 usage error
        or missing policy file.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: keep main() returning
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    run: Callable[[argparse.Namespace], int] | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    return run(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand in :data:`COMMANDS` registered."""
    parser = argparse.ArgumentParser(
        prog="failover",
        description="Keep LLM calls working when providers fail.",
    )
    parser.add_argument("--version", action="version", version=f"failover {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    # The call-making commands live in their own module, which imports this one.
    from ._calls import add_complete, add_demo, add_status
    from ._simulate import add_simulate

    for add in (*COMMANDS, add_complete, add_status, add_demo, add_simulate):
        add(subparsers)
    return parser


def policy_path(given: str | None) -> str:
    """The policy file to use: ``given``, else ``$FAILOVER_CONFIG``, else ``routes.yaml``."""
    return given or os.environ.get(ENV_POLICY) or DEFAULT_POLICY


def load_policy(given: str | None, stderr: TextIO | None = None) -> Policy | int:
    """Load the policy for a subcommand, or report why not.

    Returns:
        The policy, or the exit status to return: 2 when the file does not exist,
        1 when it is invalid (each issue printed as ``FILE:LINE: ...`` on stderr).
    """
    err = stderr or sys.stderr
    path = policy_path(given)
    if not os.path.exists(path):
        return _no_file(path, given, err)
    try:
        return Policy.from_yaml(path)
    except PolicyFileNotFound:  # removed between the check and the read
        return _no_file(path, given, err)
    except PolicyError as exc:
        for issue in exc.issues:
            print(issue, file=err)
        return 1


def _no_file(path: str, given: str | None, err: TextIO) -> int:
    origin = f" (from ${ENV_POLICY})" if not given and os.environ.get(ENV_POLICY) else ""
    print(f"failover: no such policy file: {path}{origin}", file=err)
    return 2


# --- check --------------------------------------------------------------------------------


def _add_check(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="validate a policy file and summarise it",
        description="Validate a policy file. Problems are printed as FILE:LINE: messages.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        metavar="PATH",
        help=f"the policy file (default: ${ENV_POLICY}, else ./{DEFAULT_POLICY})",
    )
    parser.set_defaults(run=_run_check)


def _run_check(args: argparse.Namespace) -> int:
    policy = load_policy(args.path)
    if isinstance(policy, int):
        return policy
    print("\n".join(summary(policy)))
    # A missing extra is a warning, not an error: the file is valid, and the other
    # endpoints still answer; but the fix belongs here, not in a crash at the first call.
    for missing in missing_extras(policy):
        print(f"{policy.source or 'policy'}: warning: {missing}", file=sys.stderr)
    return 0


def summary(policy: Policy) -> list[str]:
    """Describe a valid policy for people: routes and their endpoints, backends."""
    routes = len(policy.routes)
    lines = [
        f"{policy.source or 'policy'}: OK ({len(policy.endpoints)} endpoint(s), {routes} route(s))"
    ]
    default = policy.default_route or (next(iter(policy.routes)) if routes == 1 else None)
    for route in policy.routes.values():
        lines.append("")
        lines.extend(_route_lines(policy, route, is_default=route.name == default))
    unused = [name for name in policy.endpoints if not _on_a_route(policy, name)]
    lines.append("")
    if unused:
        lines.append(f"unused endpoints: {', '.join(unused)}")
    if policy.namespace is not None:
        lines.append(f"namespace: {policy.namespace}")
    if policy.default_route is not None:
        lines.append(f"default route: {policy.default_route}")
    elif default is not None:
        lines.append(f"default route: {default} (the only route)")
    else:
        lines.append("default route: none (every call must name a route)")
    cache = policy.cache
    lines.append(f"cache backend: {redact_url(cache.backend)} (max {cache.max_entries} entries)")
    state = policy.state
    shared = "shared across processes" if state.kind == "redis" else "per process"
    lines.append(f"state backend: {redact_url(state.backend)} ({shared})")
    return lines


def _route_lines(policy: Policy, route: RoutePolicy, *, is_default: bool) -> list[str]:
    marker = " (default)" if is_default else ""
    if route.cache is None:
        cache = "cache off"
    else:
        c = route.cache
        cache = (
            f"cache ttl {format_duration(c.ttl)}, stale_if_error "
            f"{format_duration(c.stale_if_error)}, serve {c.serve}"
        )
    lines = [
        f"route {route.name}{marker}",
        f"  deadline {format_duration(route.deadline)}, {cache}, on_interrupt {route.on_interrupt}",
    ]
    width = max(len(name) for name in route.endpoints)
    for index, name in enumerate(route.endpoints, start=1):
        ep = policy.endpoints[name]
        timeout, retry, _ = policy.effective(route.name, name)
        where = redact_url(ep.base_url) if ep.base_url else "(provider default URL)"
        first = timeout.first_token
        first_token = f", first token {format_duration(first)}" if first is not None else ""
        lines.append(
            f"  {index}. {name:<{width}}  {ep.provider:<9}  {ep.model}  {where}  "
            f"[{retry.attempts} attempt(s), read timeout {format_duration(timeout.read)}"
            f"{first_token}]"
        )
    return lines


def _on_a_route(policy: Policy, endpoint: str) -> bool:
    return any(endpoint in route.endpoints for route in policy.routes.values())


# --- schema -------------------------------------------------------------------------------


def _add_schema(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schema of the policy file",
        description="Print the JSON Schema (draft 2020-12) of the policy file.",
    )
    parser.set_defaults(run=_run_schema)


def _run_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Policy.json_schema(), indent=2))
    return 0


#: Subcommand declarations, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[[Subparsers[argparse.ArgumentParser]], None], ...] = (
    _add_check,
    _add_schema,
)
