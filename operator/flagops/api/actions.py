"""The imperative action annotation: `flagops.dev/action: "<verb>[:<reason>]@<id>"`.

Grammar (docs/api.md):

    value  = verb [ ":" reason ] "@" id
    verb   = advance | pause | resume | rollback | check | retry
    reason = "force" | "force:" text | text      (force only with advance)
    id     = [A-Za-z0-9][A-Za-z0-9._-]{0,62}

The id is whatever follows the LAST `@`, so a reason may itself contain `@`
and `:`. `advance:force@7` forces; `advance:force:hotfix approved@7` forces
with a reason; `pause:too many errors@8` is a plain reason.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

ACTION_ANNOTATION = "flagops.dev/action"

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
_ID_RE = re.compile(ID_PATTERN)
REASON_MAX_LENGTH = 1024
_FORCE = "force"


class ActionVerb(StrEnum):
    ADVANCE = "advance"
    PAUSE = "pause"
    RESUME = "resume"
    ROLLBACK = "rollback"
    CHECK = "check"
    RETRY = "retry"


@dataclass(frozen=True)
class Action:
    verb: ActionVerb
    id: str
    reason: str | None = None
    force: bool = False

    def __str__(self) -> str:
        return format_action(self.verb, self.id, reason=self.reason, force=self.force)


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def parse_action(value: str) -> Action:
    """Parse an annotation value; ValueError says what is wrong with it."""
    text = value.strip()
    head, at, action_id = text.rpartition("@")
    if not at:
        raise ValueError(
            f"invalid action {_shorten(text)!r}: expected '<verb>[:<reason>]@<id>',"
            " e.g. 'pause:too many errors@42' (no '@<id>' found)"
        )
    if not _ID_RE.fullmatch(action_id):
        raise ValueError(
            f"invalid action {_shorten(text)!r}: id {_shorten(action_id)!r} must match {ID_PATTERN}"
        )
    verb_text, colon, reason_text = head.partition(":")
    try:
        verb = ActionVerb(verb_text.strip())
    except ValueError:
        verbs = ", ".join(v.value for v in ActionVerb)
        raise ValueError(
            f"invalid action {_shorten(text)!r}: unknown verb {_shorten(verb_text)!r}"
            f" (one of {verbs})"
        ) from None
    reason: str | None = None
    force = False
    if colon:
        reason_text = reason_text.strip()
        if reason_text == _FORCE or reason_text.startswith(_FORCE + ":"):
            force = True
            reason_text = reason_text[len(_FORCE) + 1 :].strip()
            if not reason_text and head.strip().endswith(":"):
                raise ValueError(f"invalid action {_shorten(text)!r}: empty reason after 'force:'")
        elif not reason_text:
            raise ValueError(f"invalid action {_shorten(text)!r}: empty reason after ':'")
        reason = reason_text or None
    if force and verb is not ActionVerb.ADVANCE:
        raise ValueError(f"invalid action {_shorten(text)!r}: only 'advance' can be forced")
    if reason is not None and len(reason) > REASON_MAX_LENGTH:
        raise ValueError(
            f"invalid action {_shorten(text)!r}: reason longer than {REASON_MAX_LENGTH} characters"
        )
    return Action(verb=verb, id=action_id, reason=reason, force=force)


def format_action(
    verb: ActionVerb | str, action_id: str, reason: str | None = None, force: bool = False
) -> str:
    """The annotation value for an action; the inverse of parse_action."""
    parts = [ActionVerb(verb).value]
    if force:
        parts.append(_FORCE)
    if reason:
        parts.append(reason)
    value = ":".join(parts) + "@" + action_id
    # Round-trip through the parser so the writer can never produce what the operator rejects.
    parse_action(value)
    return value


def new_action_id() -> str:
    """A fresh, sortable id: unix milliseconds and random hex."""
    return f"{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}"
