"""Pushing: golden records changed since a connection's last push go out through its sink.

The push is cut into slices of contact ids; each slice job first hands the next slice to the
queue, then maps its contacts with the connection's outbound mapping, asks the consent guard,
and writes them in the sink's batches. Per contact the hub remembers the hash of what it wrote:
an unchanged payload is not sent again, which is also why a push that comes back (as a webhook
or in the next pull) cannot bounce between tools. A refused record is kept with the vendor's
reason and retried by the next run; a blocked one raises a `compliance` flag naming the rule.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from connectors.base import Connector
from connectors.http import VendorHttp
from connectors.sinks import OutboundRecord, Outcome, PushResult, Sink
from connectors.withdrawals import WITHDRAWALS
from hub.adapters.db import admin
from hub.adapters.db import contacts as contact_store
from hub.adapters.db import sync_store as store
from hub.domain.contact import CANONICAL_FIELDS
from hub.domain.errors import AuthenticationError, HubError
from hub.domain.flags import FlagKind, NewFlag
from hub.domain.identity import IdentityKey, IdentityKind
from hub.domain.mapping import OutboundMapping
from hub.domain.sync import (
    MARKETING_CHANNELS,
    WITHHELD,
    Boundary,
    Verdict,
    consent_channel,
    decide_push,
    parse_time,
    payload_hash,
)
from hub.redaction import redact
from hub.services.contact_view import contact_view
from hub.services.sync_common import (
    ACTOR,
    NEEDS_ATTENTION,
    SyncDeps,
    Target,
    describe,
    end_run,
    needs_attention,
    now,
    record_error,
    target,
    vendor_client,
)

log = logging.getLogger(__name__)
COUNTERS = ("pushed", "push_unchanged", "push_rejected", "push_blocked", "withdrawals")


def start_push(deps: SyncDeps, run_id: int) -> None:
    with deps.engine.connect() as conn:
        run = store.get_run(conn, run_id)
    target_ = target(deps.engine, run.connection)
    try:
        sinks = target_.connector.sinks(target_.context) if target_.push_mode != "off" else {}
    except HubError as exc:
        record_error(deps, run_id, "push", exc)
        sinks = {}
    if not sinks:
        finish(deps, run_id, pushed=False)
        return
    with deps.engine.begin() as conn:
        store.add_counts(conn, run_id, push_slices=1)
    deps.jobs.push(run_id, 0, run.epoch)


def push_slice(deps: SyncDeps, run_id: int, after: int, epoch: int) -> str:
    """Push the changed contacts among the next HUB_SYNC_PUSH_SLICE ids after `after`,
    having handed the following range to the queue first."""
    with deps.engine.connect() as conn:
        run = store.get_run(conn, run_id)
    if run is None or run.status != store.RUNNING or run.phase != "push" or run.epoch != epoch:
        return "nothing to do"
    target_ = target(deps.engine, run.connection)
    upto = after + deps.settings.push_slice
    linked_only = target_.push_mode == "linked"
    since = _since(deps, run)
    with deps.engine.connect() as conn:
        last = upto >= store.last_contact_id(conn)
        candidates = store.candidate_ids(conn, target_.name, since=since, after=after,
                                         upto=upto, linked_only=linked_only)
        retried = store.dead_letters(conn, target_.name, deps.settings.dead_letter_limit) \
            if after == 0 else []
    if not last:
        with deps.engine.begin() as conn:
            if not store.add_counts(conn, run_id, epoch, push_slices=1):
                return "fenced off"
        deps.jobs.push(run_id, upto, epoch)
    ids = sorted(set(candidates) | set(retried))
    counts: dict[str, int] = {}
    try:
        counts = push_contacts(deps, target_, ids, run_id=run_id, only_linked=linked_only)
    except AuthenticationError as exc:
        needs_attention(deps, run_id, target_.name, exc)
        return "needs attention"
    except Exception as exc:  # noqa: BLE001 - recorded; the watermark then stays put
        record_error(deps, run_id, f"push after {after}", exc)
    with deps.engine.begin() as conn:
        store.add_counts(conn, run_id, epoch, push_slices_done=1, **counts)
        if last:
            store.mark_push_complete(conn, run_id)
    finish(deps, run_id, pushed=True)
    return "pushed"


def _since(deps: SyncDeps, run: Any) -> datetime | None:
    """Contacts changed since the last push began (less a margin for slow commits)."""
    if run.full:
        return None
    with deps.engine.connect() as conn:
        mark = store.get_bookmark(conn, run.connection, store.PUSH_STREAM).value
    when = parse_time(mark) if mark else None
    return when - timedelta(seconds=deps.settings.push_lag_seconds) if when else None


def finish(deps: SyncDeps, run_id: int, *, pushed: bool) -> None:
    """End the run once every slice is done: its status, the push watermark, the lock."""
    with deps.engine.begin() as conn:
        run = store.get_run(conn, run_id)
        if run is None or run.status != store.RUNNING:
            return
        if pushed and (not run.push_complete or run.push_slices_done < run.push_slices):
            return
        failed = store.failed_streams(conn, run_id)
        status = "partial" if run.errors or failed else "succeeded"
        if not store.finish_run(conn, run_id, status, now()):
            return
        if pushed and not any(str(e.get("where", "")).startswith("push")
                              for e in run.errors or []):
            store.set_bookmark(conn, run.connection, store.PUSH_STREAM,
                               Boundary(run.started_at.isoformat()), run_id, now())
    deps.lock_for(run.connection).release(f"run:{run_id}")
    if status == "succeeded":
        _clear_attention(deps, run.connection)
    log.info("sync run %s of %s %s: healed %s contacts, pushed %s", run_id, run.connection,
             status, run.healed, run.pushed)


def _clear_attention(deps: SyncDeps, connection: str) -> None:
    info = admin.get_connection(deps.engine, connection)
    if info is not None and info.status == NEEDS_ATTENTION:
        admin.set_connection_status(deps.engine, connection, "active", None, ACTOR)


# --- one batch of contacts -----------------------------------------------------------------

def push_contacts(deps: SyncDeps, target_: Target, ids: list[int], *, run_id: int | None,
                  only_linked: bool) -> dict[str, int]:
    """Map, guard and send these contacts to one connection; per-record results stored."""
    counts = dict.fromkeys(COUNTERS, 0)
    if not ids:
        return counts
    sinks = target_.connector.sinks(target_.context)
    for object_type, sink in sinks.items():
        plan = _plan(deps, target_, object_type, ids, only_linked)
        counts["push_unchanged"] += plan.unchanged
        counts["push_blocked"] += len(plan.blocked)
        if plan.sends or plan.blocked or plan.known:
            http = vendor_client(deps, target_, run_id)
            results = _send(sink, http, plan.sends) if plan.sends else []
            withdrawn = _withdraw(target_.connector, http, plan)
            _save(deps, target_, plan, results, withdrawn, counts)
    return counts


class _Plan:
    def __init__(self) -> None:
        self.sends: list[OutboundRecord] = []
        self.digests: dict[int, tuple[str, str | None, str | None]] = {}  # hash, consent, prior
        self.emails: dict[int, str] = {}
        self.blocked: list[dict[str, Any]] = []
        self.known: list[dict[str, Any]] = []  # nothing to send: the tool has it all already
        self.flags: list[NewFlag] = []
        self.unchanged = 0


def _plan(deps: SyncDeps, target_: Target, object_type: str, ids: list[int],
          only_linked: bool) -> _Plan:
    connector, name = target_.connector, target_.name
    mapping = deps.mappings.get_outbound_for(name, connector.key, object_type)
    channel = consent_channel(connector.kind)
    marketing = connector.kind in MARKETING_CHANNELS
    plan = _Plan()
    relevant = fields_read_by(mapping)
    with deps.engine.connect() as conn:
        rows = store.load_contacts(conn, ids)
        identities = store.identities_of(conn, ids)
        states = store.push_states(conn, name, ids)
        sources = store.sources_of(conn, ids)
    for row in rows:
        if row.merged_into is not None or getattr(row, "erased_at", None) is not None:
            continue  # erased or merged away: never pushed
        keys = [IdentityKey(IdentityKind(k), s, v) for k, s, v in identities.get(row.id, [])]
        linked = sorted(k.value for k in keys if k.kind is IdentityKind.EXTERNAL and
                        k.scope == name)
        view = contact_view(row.id, row.data or {}, keys, row.created_at, row.updated_at)
        consent = (view["consent"].get(channel) or {}).get("status")
        if not linked and not _wanted(marketing, consent, only_linked):
            continue
        view["external_id"] = linked[0] if linked else None
        payload, _problems = mapping.apply(view)
        digest = payload_hash(payload, consent)
        state = states.get(row.id)
        if state is not None and state.payload_hash == digest and state.status != "rejected":
            plan.unchanged += 1
            continue
        if echoes(relevant, row.data or {}, sources.get(row.id, {}), name):
            plan.known.append(_state(row.id, "ok", digest, consent))  # the tool said it all
            plan.unchanged += 1
            continue
        decision = decide_push(kind=connector.kind, connector=connector.key, consent=consent,
                               payload=payload, linked=bool(linked))
        if decision.verdict is Verdict.BLOCK:
            plan.blocked.append(_state(row.id, "blocked", digest, consent,
                                       f"{decision.rule}: {decision.reason}"))
            plan.flags.append(_blocked_flag(row.id, name, decision.rule, decision.reason))
            continue
        plan.sends.append(OutboundRecord(row.id, view["external_id"], payload))
        plan.digests[row.id] = (digest, consent, state.consent if state else None)
        if view.get("email"):
            plan.emails[row.id] = str(view["email"])
    return plan


def _wanted(marketing: bool, consent: str | None, only_linked: bool) -> bool:
    """Whether a contact the tool does not hold yet goes to it: a withdrawal goes to every
    email tool (as a suppression); otherwise only with push=all, and an audience only gets
    contacts who consented (not having asked is not an attempt worth a flag)."""
    if marketing and consent in WITHHELD:
        return True
    if only_linked:
        return False
    return not marketing or consent == "granted"


def _state(contact_id: int, status: str, digest: str, consent: str | None,
           reason: str | None = None) -> dict[str, Any]:
    return {"contact_id": contact_id, "status": status, "payload_hash": digest,
            "consent": consent, "reason": reason, "attempts": 0, "pushed_at": None,
            "updated_at": now()}


def fields_read_by(mapping: OutboundMapping) -> frozenset[str]:
    """The canonical fields an outbound mapping reads (its sources, as dotted names)."""
    names = set()
    for rule in mapping.rules:
        for path in rule.sources:
            names.add(".".join(step.key for step in path if step.key is not None))
    return frozenset(n for n in names if n in CANONICAL_FIELDS or n.startswith("custom."))


def echoes(relevant: frozenset[str], values: dict[str, Any], sources: dict[str, str],
           connection: str) -> bool:
    """Every value the tool would be sent came from the tool itself: it has them already
    (never echo a tool's own data back to it; this also keeps pushes from bouncing)."""
    said = {sources.get(name) for name in relevant if values.get(name) not in (None, "", [])}
    return said <= {connection}


def _blocked_flag(contact_id: int, connection: str, rule: str, reason: str) -> NewFlag:
    return NewFlag(kind=FlagKind.COMPLIANCE, contact_id=contact_id,
                   topic=f"push:{connection}:{rule}",
                   summary=f"push to {connection} blocked by the rule '{rule}'",
                   details={"rule": rule, "connection": connection, "reason": reason})


def _send(sink: Sink, http: VendorHttp, records: list[OutboundRecord]) -> list[PushResult]:
    """The sink's batches; a batch the vendor fails for (not a per-record refusal) is
    dead-lettered whole with the reason and retried next run. Refused credentials stop it."""
    results: list[PushResult] = []
    size = max(1, sink.batch_size)
    for start in range(0, len(records), size):
        batch = records[start:start + size]
        try:
            results.extend(sink.push(http, batch))
        except AuthenticationError:
            raise
        except HubError as exc:
            reason = describe(exc)
            results.extend(PushResult(r.hub_id, Outcome.REJECTED, r.external_id, reason)
                           for r in batch)
    return results


def _withdraw(connector: Connector, http: VendorHttp, plan: _Plan) -> dict[int, str | None]:
    """The tool's own unsubscribe call for newly withdrawn contacts: hub id -> error."""
    adapter = WITHDRAWALS.get(connector.key)
    done: dict[int, str | None] = {}
    if adapter is None:
        return done
    for hub_id, (_digest, consent, prior) in plan.digests.items():
        if consent not in WITHHELD or prior in WITHHELD or hub_id not in plan.emails:
            continue
        try:
            adapter.withdraw(http, plan.emails[hub_id])
            done[hub_id] = None
        except AuthenticationError:
            raise
        except HubError as exc:
            done[hub_id] = describe(exc)
    return done


def _save(deps: SyncDeps, target_: Target, plan: _Plan, results: list[PushResult],
          withdrawn: dict[int, str | None], counts: dict[str, int]) -> None:
    when = now()
    rows = list(plan.blocked)
    links: dict[int, str] = {}
    for result in results:
        digest, consent, prior = plan.digests.get(result.hub_id, (None, None, None))
        error = withdrawn.get(result.hub_id)
        if result.outcome is Outcome.REJECTED or error:
            counts["push_rejected"] += 1
            rows.append({"contact_id": result.hub_id, "status": "rejected", "payload_hash": None,
                         "consent": prior, "reason": redact(result.reason or error or "", 500),
                         "attempts": 1, "pushed_at": None, "updated_at": when})
            continue
        counts["pushed"] += result.outcome in (Outcome.CREATED, Outcome.UPDATED)
        counts["push_unchanged"] += result.outcome is Outcome.UNCHANGED
        counts["withdrawals"] += consent in WITHHELD and prior not in WITHHELD
        rows.append({"contact_id": result.hub_id, "status": "ok", "payload_hash": digest,
                     "consent": consent, "reason": None, "attempts": 0, "pushed_at": when,
                     "updated_at": when})
        if result.external_id:
            links[result.hub_id] = result.external_id
    rows.extend(plan.known)
    with deps.engine.begin() as conn:
        _count_attempts(conn, target_.name, rows)
        store.save_push_states(conn, target_.name, rows)
        store.link_external(conn, target_.name, links, when)
        if plan.flags:
            contact_store.save(conn, [], plan.flags, when)


def _count_attempts(conn: Any, connection: str, rows: list[dict[str, Any]]) -> None:
    rejected = [r for r in rows if r["status"] == "rejected"]
    if rejected:
        prior = store.push_states(conn, connection, [r["contact_id"] for r in rejected])
        for row in rejected:
            state = prior.get(row["contact_id"])
            row["attempts"] = (state.attempts if state and state.status == "rejected" else 0) + 1


# --- withdrawals between runs --------------------------------------------------------------

def push_withdrawals(deps: SyncDeps, contact_ids: list[int]) -> dict[str, dict[str, int]]:
    """A consent just turned to withdrawn or denied: unsubscribe the contacts in every email
    tool now (any connection that would email them), not at the next nightly run."""
    done: dict[str, dict[str, int]] = {}
    for info in admin.list_connections(deps.engine):
        target_ = target(deps.engine, info.name)
        connector = target_.connector
        marketing = connector.kind in MARKETING_CHANNELS
        if not (marketing or connector.key in WITHDRAWALS):
            continue
        try:
            if target_.push_mode == "off" or not connector.sinks(target_.context):
                continue
            done[info.name] = push_contacts(deps, target_, contact_ids, run_id=None,
                                            only_linked=not marketing)
        except AuthenticationError as exc:
            admin.set_connection_status(deps.engine, info.name, NEEDS_ATTENTION,
                                        redact(exc.detail, 400), ACTOR)
        except HubError as exc:
            log.warning("withdrawal push to %s failed: %s", info.name, describe(exc))
    return done


def fail(deps: SyncDeps, run_id: int, connection: str, exc: BaseException) -> None:
    record_error(deps, run_id, "run", exc)
    end_run(deps, run_id, connection, "failed")
