"""Notifications (alert events, redaction) and delivery arithmetic (status classes,
``Retry-After``, backoff, pacing). PURE.
"""

from __future__ import annotations

import calendar
import hashlib
import math
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

import attrs

from ops_manager.model.alert_event import AlertEvent
from ops_manager.reducers.alerts._vocab import (
    JSON,
    REDACTED,
)

# --- notifications -----------------------------------------------------------------------


def notification_key(loop_id: str, dedup_key: str, action: str, sequence: str) -> str:
    """The idempotency key of one notification: sha256 of (loop, dedup key, action, seq).

    ``sequence`` is ``L<escalation line>`` for a trigger and ``r<last trigger line>`` for a
    resolve, so a retry, a replay or a re-run after a crash yields the same key.
    """
    material = "\x1f".join((loop_id, dedup_key, action, sequence))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


_PATH_KEY_SUFFIXES = ("File", "Path", "Dir", "Directory")


def redact_escalation(value: Any, repo: str) -> Any:
    """The escalation as it may leave the machine (DECISIONS Q-19).

    Every value of a key ending in ``File``/``Path``/``Dir`` that is an absolute path is made
    relative to ``repo`` when inside it, and dropped otherwise. Other values are kept.
    """
    if isinstance(value, list):
        return [redact_escalation(v, repo) for v in value]
    if not isinstance(value, dict):
        return value
    out: JSON = {}
    root = PurePosixPath(repo)
    for key, item in value.items():
        if isinstance(item, str) and key.endswith(_PATH_KEY_SUFFIXES) and item.startswith("/"):
            try:
                rel = PurePosixPath(item).relative_to(root)
            except ValueError:
                continue
            out[key] = str(rel) if str(rel) != "." else "."
            continue
        out[key] = redact_escalation(item, repo)
    return out


def escalation_reason_codes(escalation: Mapping[str, Any], category: str) -> tuple[str, ...]:
    """The reason codes an operator needs, per escalation category."""
    codes: list[str] = []
    raw_codes = escalation.get("reasonCodes")
    if isinstance(raw_codes, list):
        codes.extend(c for c in raw_codes if isinstance(c, str))
    sequence = escalation.get("sequence")
    if isinstance(sequence, dict) and isinstance(sequence.get("violations"), list):
        codes.extend(v for v in sequence["violations"] if isinstance(v, str))
    flags = escalation.get("divergenceFlags")
    if isinstance(flags, dict):
        codes.extend(k for k, v in flags.items() if v is True)
    reason = escalation.get("reasonCode")
    if isinstance(reason, str) and reason:
        codes.append(reason)
    if not codes:
        codes.append(category)
    return tuple(dict.fromkeys(codes))


def build_event(
    *,
    action: str,
    loop_id: str,
    category: str,
    severity: str,
    trace_id: str,
    escalation: Mapping[str, Any],
    escalation_timestamp: str | None,
    emitted_at: str,
    dedup_key: str,
    sequence: str,
    run_id: str | None,
    repo: str,
) -> AlertEvent:
    """The :class:`~ops_manager.sinks.AlertEvent` every sink of one notification gets."""
    redacted = redact_escalation(dict(escalation), repo)
    summary = (
        f"ops-manager {category} ({severity}) loop={loop_id}"
        if action == "trigger"
        else f"ops-manager {category} resolved loop={loop_id}"
    )
    return AlertEvent(
        action=action,
        loop_id=loop_id,
        category=category,
        severity=severity,
        trace_id=trace_id,
        escalation=redacted,
        escalation_timestamp=escalation_timestamp or None,
        emitted_at=emitted_at,
        dedup_key=dedup_key,
        idempotency_key=notification_key(loop_id, dedup_key, action, sequence),
        run_id=run_id,
        reason_codes=escalation_reason_codes(escalation, category),
        summary=summary,
        # the repo's directory NAME only, for sinks that show it (webhook
        # source.repoPath); passed when this AlertEvent version has the field
        repo_name=PurePosixPath(repo).name,
    )


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def event_to_json(event: AlertEvent) -> JSON:
    """An :class:`AlertEvent` as a JSON object (camelCase keys, every field)."""
    out: JSON = {}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        out[_camel(field.name)] = list(value) if isinstance(value, tuple) else value
    return out


def event_from_json(obj: Mapping[str, Any]) -> AlertEvent:
    """The inverse of :func:`event_to_json` (unknown keys ignored). Raises ``ValueError``."""
    kwargs: dict[str, Any] = {}
    for field in attrs.fields(AlertEvent):
        key = _camel(field.name)
        if key in obj:
            value = obj[key]
            kwargs[field.name] = tuple(value) if isinstance(value, list) else value
    try:
        return AlertEvent(**kwargs)
    except TypeError as exc:
        raise ValueError(f"invalid alert event: {exc}") from None


# --- delivery arithmetic -----------------------------------------------------------------

HTTP_SUCCESS = "success"
HTTP_RETRYABLE = "retryable"
HTTP_TERMINAL = "terminal"
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def classify_http_status(status: int) -> str:
    """2xx ``success``; 408/425/429/5xx ``retryable``; anything else (3xx: redirects are not
    followed; other 4xx) ``terminal``."""
    if 200 <= status <= 299:
        return HTTP_SUCCESS
    if status in RETRYABLE_STATUSES or 500 <= status <= 599:
        return HTTP_RETRYABLE
    return HTTP_TERMINAL


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None``
    when absent or unparseable. A date in the past is 0."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    import email.utils  # ~10 ms to import; only a Retry-After HTTP-date needs it

    try:
        parsed = email.utils.parsedate_tz(text)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    epoch = calendar.timegm(parsed[:9]) - (parsed[9] or 0)
    return max(0.0, float(epoch) - now)


def backoff_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Full jitter: ``u * min(cap, base * 2**(attempt-1))`` with ``u`` in [0, 1)."""
    exponent = min(attempt - 1, 30)
    return max(0.0, u) * min(cap, base * math.pow(2, exponent))


def pacing_delay(last_sent: float | None, now: float, min_interval: float) -> float:
    """Seconds to wait before the next request to one destination."""
    if last_sent is None or min_interval <= 0:
        return 0.0
    return max(0.0, last_sent + min_interval - now)


def excerpt(text: str, limit: int = 300) -> str | None:
    """§3.6 body excerpt: ``\\n`` → space, first ``limit`` characters, ``None`` if empty."""
    out = text.replace("\n", " ")[:limit]
    return out or None


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``[redacted]``."""
    for secret in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
