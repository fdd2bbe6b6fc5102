"""`kubectl flagops`: on-call commands for Rollouts and FeatureFlags.

Exit codes: 0 done (action Succeeded, checks passed); 1 action Rejected or
Failed, a validation check failed, or another API error; 2 usage error;
3 timed out waiting for the operator; 4 not found, forbidden, or the flagops
CRDs are not installed; 5 cluster unreachable or kubeconfig unusable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from flagops.clients.flag_admin import CompletedRollout, FlagChange, FlagSummary
from flagops.clients.rollout_summary import ActionOutcome, Check, RolloutSummary

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_NOT_FOUND = 4
EXIT_UNREACHABLE = 5

ACTION_VERBS = ("advance", "pause", "resume", "rollback", "check", "retry")
DEFAULT_TIMEOUT = 30.0


class RolloutAPI(Protocol):
    """What the plugin needs of flagops.clients.RolloutManager."""

    namespace: str

    def get_rollout_status(self, name: str) -> RolloutSummary: ...
    def list_rollouts(self) -> list[RolloutSummary]: ...
    def watch_rollouts(self, name: str | None = None) -> Iterator[RolloutSummary]: ...
    def act(
        self,
        name: str,
        verb: Any,
        reason: str | None = None,
        force: bool = False,
        timeout: float = 30,
    ) -> ActionOutcome: ...
    def validate_rollout(self, name: str) -> list[Check]: ...


class FlagAPI(Protocol):
    """What the plugin needs of flagops.clients.FlagAdmin."""

    namespace: str

    def list_flags(self) -> list[FlagSummary]: ...
    def enable_flag(self, key: str, percent: int | None = None) -> FlagChange: ...
    def disable_flag(self, key: str) -> FlagChange: ...
    def rollback(self, key: str, decrement: int) -> FlagChange: ...
    def set_cohorts(self, key: str, cohorts: Iterable[str]) -> FlagChange: ...
    def complete_rollout(self, rollout: str) -> CompletedRollout: ...


@dataclass
class Clients:
    rollouts: RolloutAPI
    flags: FlagAPI


ClientFactory = Callable[[argparse.Namespace], Clients]


def real_clients(args: argparse.Namespace) -> Clients:
    from flagops.clients import FlagAdmin, RolloutManager, default_namespace, load_api_client

    namespace = args.namespace or default_namespace(args.kubeconfig, args.context)
    api = load_api_client(args.kubeconfig, args.context)
    return Clients(
        rollouts=RolloutManager(
            api,
            namespace,
            prometheus_address=getattr(args, "prometheus_address", None),
        ),
        flags=FlagAdmin(api, namespace),
    )


# --- arguments ---------------------------------------------------------------------


def _percent(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be 0..100, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _cohorts(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def _add_globals(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # On subcommands the defaults are suppressed, so `kubectl flagops -n a status`
    # and `kubectl flagops status -n a` both work (kubectl puts no flags before a plugin).
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("cluster options (as kubectl)")
    group.add_argument("-n", "--namespace", default=default, help="namespace (default: context's)")
    group.add_argument("--context", default=default, help="kubeconfig context to use")
    group.add_argument("--kubeconfig", default=default, help="path to the kubeconfig file")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl flagops",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="exit codes: 0 ok; 1 rejected/failed; 2 usage; 3 timeout;"
        " 4 not found/forbidden/CRDs missing; 5 cluster unreachable",
    )
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _add_globals(p, suppress=True)
        return p

    status = add("status", "show one Rollout in detail, or all Rollouts of the namespace")
    status.add_argument("rollout", nargs="?", metavar="ROLLOUT")
    status.add_argument("-w", "--watch", action="store_true", help="follow changes until Ctrl-C")

    helps = {
        "advance": "move one stage up (only after a passing analysis, unless --force)",
        "pause": "pause the Rollout",
        "resume": "resume a paused Rollout",
        "rollback": "go to DISABLED (phase RolledBack) until retry or a new spec",
        "check": "run analysis (and a probe, if configured) now",
        "retry": "start again after a rollback",
    }
    for verb in ACTION_VERBS:
        p = add(verb, helps[verb])
        p.add_argument("rollout", metavar="ROLLOUT")
        p.add_argument("--reason", help="why (recorded in the annotation and status.lastAction)")
        if verb == "advance":
            p.add_argument(
                "--force", action="store_true", help="advance even without a passing analysis"
            )
        p.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_TIMEOUT,
            help=f"seconds to wait for the operator (default {DEFAULT_TIMEOUT:g})",
        )

    validate = add("validate", "run the Rollout's readiness checks from here")
    validate.add_argument("rollout", metavar="ROLLOUT")
    validate.add_argument(
        "--prometheus-address",
        help="Prometheus to check when the spec names none (default $FLAGOPS_PROMETHEUS_ADDRESS)",
    )

    complete = add("complete", "write the Rollout's stage into its FeatureFlag, then delete it")
    complete.add_argument("rollout", metavar="ROLLOUT")

    add("flags", "list FeatureFlags with their effective (published) state")

    flag = add("flag", "change a FeatureFlag's spec (by key or name)")
    flag_sub = flag.add_subparsers(dest="flag_command", required=True, metavar="VERB")

    def add_flag(name: str, help_text: str) -> argparse.ArgumentParser:
        p = flag_sub.add_parser(name, help=help_text, description=help_text)
        _add_globals(p, suppress=True)
        p.add_argument("key", metavar="KEY")
        return p

    enable = add_flag("enable", "turn the flag on (optionally set its percent)")
    enable.add_argument("--percent", type=_percent, help="rolloutPercent 0..100")
    add_flag("disable", "turn the flag off")
    back = add_flag("rollback", "lower rolloutPercent by N (not below 0)")
    back.add_argument("--by", type=_non_negative, required=True, metavar="N")
    cohorts = add_flag("set", "set the flag's allowedCohorts")
    cohorts.add_argument(
        "--cohorts", type=_cohorts, required=True, help="comma-separated; '' clears"
    )
    return parser


# --- commands ----------------------------------------------------------------------


def _status(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    api = clients.rollouts
    if not args.watch:
        if args.rollout:
            print(fmt.rollout_detail(api.get_rollout_status(args.rollout)), file=out)
        else:
            rollouts = api.list_rollouts()
            if not rollouts:
                print(f'No rollouts in namespace "{api.namespace}".', file=out)
            else:
                print(fmt.rollouts_table(rollouts), file=out)
        return EXIT_OK
    try:
        header_done = False
        for summary in api.watch_rollouts(args.rollout):
            if args.rollout:
                print(fmt.rollout_detail(summary), file=out)
                print("---", file=out, flush=True)
            else:
                lines = fmt.rollouts_table([summary]).splitlines()
                if not header_done:
                    print(lines[0], file=out)
                    header_done = True
                print(lines[1], file=out, flush=True)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _action(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    outcome = clients.rollouts.act(
        args.rollout,
        args.command,
        reason=args.reason,
        force=getattr(args, "force", False),
        timeout=args.timeout,
    )
    print(fmt.action_line(outcome), file=out)
    return EXIT_OK if outcome.result == "Succeeded" else EXIT_FAILED


def _validate(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    checks = clients.rollouts.validate_rollout(args.rollout)
    print(fmt.checks_table(checks), file=out)
    failed = [c.name for c in checks if not c.ok]
    if failed:
        print(f"{len(failed)} check(s) failed: {', '.join(failed)}", file=out)
        return EXIT_FAILED
    return EXIT_OK


def _complete(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    done = clients.flags.complete_rollout(args.rollout)
    print(
        f'rollout "{done.rollout}" completed at stage {done.stage.value} and deleted;'
        f" flag spec now carries that stage",
        file=out,
    )
    print(fmt.flag_change_line(done.change), file=out)
    return EXIT_OK


def _flags(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    flags = clients.flags.list_flags()
    if not flags:
        print(f'No feature flags in namespace "{clients.flags.namespace}".', file=out)
    else:
        print(fmt.flags_table(flags), file=out)
    return EXIT_OK


def _flag(clients: Clients, args: argparse.Namespace, out: TextIO) -> int:
    from flagops.cli import plugin_format as fmt

    api = clients.flags
    verb = args.flag_command
    if verb == "enable":
        change = api.enable_flag(args.key, args.percent)
    elif verb == "disable":
        change = api.disable_flag(args.key)
    elif verb == "rollback":
        change = api.rollback(args.key, args.by)
    else:
        change = api.set_cohorts(args.key, args.cohorts)
    print(fmt.flag_change_line(change), file=out)
    return EXIT_OK


COMMANDS: dict[str, Callable[[Clients, argparse.Namespace, TextIO], int]] = {
    "status": _status,
    "validate": _validate,
    "complete": _complete,
    "flags": _flags,
    "flag": _flag,
    **dict.fromkeys(ACTION_VERBS, _action),
}


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code for an expected error, None for a bug (which keeps its traceback)."""
    from kubernetes.client.exceptions import ApiException

    from flagops.clients import errors
    from flagops.clients.rollout_manager import ActionTimeout

    if isinstance(exc, ActionTimeout):
        return EXIT_TIMEOUT
    if isinstance(
        exc, errors.NotFound | errors.Forbidden | errors.ResourceNotInstalled | errors.AmbiguousFlag
    ):
        return EXIT_NOT_FOUND
    if isinstance(exc, errors.ClusterUnreachable | errors.ConfigError):
        return EXIT_UNREACHABLE
    if isinstance(exc, errors.FlagopsError | ApiException):
        return EXIT_FAILED
    return None


def _error_text(exc: BaseException) -> str:
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return f"the API server answered {exc.status} {exc.reason}"
    return str(exc)


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: ClientFactory | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        made = (clients or real_clients)(args)
        return COMMANDS[args.command](made, args, out)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = exit_code_for(exc)
        if code is None:
            raise
        print(f"error: {_error_text(exc)}", file=err)
        return code


if __name__ == "__main__":
    sys.exit(main())
