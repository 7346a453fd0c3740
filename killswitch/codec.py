"""JSON shapes of the domain models: reports, ledger details, undo records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from killswitch.models import (
    Action,
    ActionResult,
    Agent,
    ContainmentReport,
    Credential,
    Grant,
    Nhi,
    Plan,
    RestoreReport,
    Verb,
    Verdict,
    VerdictStatus,
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def action_to_dict(action: Action) -> dict[str, Any]:
    return {
        "provider": action.provider,
        "verb": action.verb.value,
        "operation": action.operation,
        "principal": action.principal,
        "target": action.target,
        "reversible": action.reversible,
        "in_place": action.in_place,
        "params": dict(action.params),
        "phase": action.phase,
    }


def action_from_dict(data: Mapping[str, Any]) -> Action:
    return Action(
        provider=str(data["provider"]),
        verb=Verb(data["verb"]),
        operation=str(data["operation"]),
        principal=str(data["principal"]),
        target=str(data["target"]),
        reversible=bool(data["reversible"]),
        in_place=bool(data.get("in_place", False)),
        params={str(k): str(v) for k, v in dict(data.get("params", {})).items()},
        phase=int(data.get("phase", 0)),
    )


def result_to_dict(result: ActionResult) -> dict[str, Any]:
    return {
        **action_to_dict(result.action),
        "outcome": result.outcome.value,
        "detail": result.detail,
        "elapsed_s": round(result.elapsed_s, 4),
    }


def agent_to_dict(agent: Agent) -> dict[str, Any]:
    return {
        "id": agent.id,
        "owner": agent.owner,
        "status": agent.status.value,
        "purpose": agent.purpose,
        "environment": agent.environment,
        "expires_at": _iso(agent.expires_at),
    }


def nhi_to_dict(nhi: Nhi) -> dict[str, Any]:
    return {
        "provider": nhi.provider,
        "kind": nhi.kind,
        "ref": nhi.ref,
        "principal": nhi.principal,
        "agent_tag": nhi.agent_tag,
        "works": nhi.works,
        "privileged": nhi.privileged,
        "protected": nhi.protected,
        "created_at": _iso(nhi.created_at),
        "last_used_at": _iso(nhi.last_used_at),
        "expires_at": _iso(nhi.expires_at),
        "detail": nhi.detail,
    }


def credential_to_dict(credential: Credential) -> dict[str, Any]:
    return {
        "provider": credential.provider,
        "kind": credential.kind,
        "ref": credential.ref,
        "principal": credential.principal,
        "agent": credential.agent_id,
        "state_before": credential.state,
        "created_at": _iso(credential.created_at),
        "last_used_at": _iso(credential.last_used_at),
    }


def grant_to_dict(grant: Grant) -> dict[str, Any]:
    return {
        "provider": grant.provider,
        "kind": grant.kind,
        "principal": grant.principal,
        "ref": grant.ref,
    }


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    out: dict[str, Any] = {
        "verdict": verdict.status.value,
        "evidence": verdict.evidence,
        "probe_attempts": verdict.attempts,
        "probe_s": round(verdict.elapsed_s, 4),
    }
    if verdict.to_prove:
        out["to_prove"] = verdict.to_prove
    if verdict.converged_s is not None:
        out["converged_s"] = round(verdict.converged_s, 4)
    if verdict.flaps:
        out["flaps"] = verdict.flaps
    return out


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "run_id": plan.run_id,
        "agent": plan.agent.id,
        "target": plan.target,
        "created_at": _iso(plan.created_at),
        "providers": list(plan.providers),
        "credentials": [credential_to_dict(c) for c in plan.credentials],
        "grants": [grant_to_dict(g) for g in plan.grants],
        "actions": [action_to_dict(a) for a in plan.actions],
        "irreversible_actions": sum(1 for a in plan.actions if not a.reversible),
        "protected_skipped": list(plan.protected_skipped),
        "errors": list(plan.errors),
        "unsearched": [
            {
                "provider": u.provider,
                "reason": u.reason,
                "known": [credential_to_dict(c) for c in u.known],
            }
            for u in plan.unsearched
        ],
    }


def report_to_dict(report: ContainmentReport) -> dict[str, Any]:
    """The `--json` document of a containment (or dry run)."""
    return {
        "run_id": report.run_id,
        "workflow": report.workflow,
        "agent": report.agent.id,
        "agent_status": report.agent.status.value,
        "reason": report.reason,
        "actor": report.actor,
        "trigger": report.trigger,
        "mode": report.mode,
        "target": report.target,
        "ok": report.ok,
        "dry_run": report.dry_run,
        "summary": {s.value: report.count(s) for s in VerdictStatus},
        "credentials": [
            {
                **credential_to_dict(c.credential),
                "actions": [result_to_dict(r) for r in c.actions],
                **verdict_to_dict(c.verdict),
            }
            for c in report.credentials
        ],
        "unverified": [
            c.credential.ref
            for c in report.credentials
            if c.verdict.status is VerdictStatus.UNVERIFIED
        ],
        "grants_detached": [result_to_dict(r) for r in report.grants_detached],
        "other_actions": [result_to_dict(r) for r in report.other_actions],
        "protected_skipped": list(report.plan.protected_skipped),
        "untouched_agents_checked": [
            {
                "agent": u.agent_id,
                "provider": u.credential.provider,
                "kind": u.credential.kind,
                "ref": u.credential.ref,
                **verdict_to_dict(u.verdict),
            }
            for u in report.untouched_agents_checked
        ],
        "ledger_verified": report.ledger_verified,
        "errors": list(report.errors),
        "plan": plan_to_dict(report.plan),
        "timings": {
            "plan_s": round(report.timings.plan_s, 4),
            "contain_s": round(report.timings.contain_s, 4),
            "verify_s": round(report.timings.verify_s, 4),
            "total_s": round(report.timings.total_s, 4),
            "proven_s": round(report.timings.proven_s, 4),
            "providers": {
                p.provider: {
                    "start_s": round(p.start_s, 4),
                    "contain_s": round(p.contain_s, 4),
                    "verify_s": round(p.verify_s, 4),
                    "end_s": round(p.end_s, 4),
                    "converged_s": None if p.converged_s is None else round(p.converged_s, 4),
                    "flaps": p.flaps,
                }
                for p in report.timings.providers
            },
        },
    }


def restore_to_dict(report: RestoreReport) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "agent": report.agent.id,
        "agent_status": report.agent.status.value,
        "reason": report.reason,
        "actor": report.actor,
        "target": report.target,
        "ok": report.ok,
        "restored": [result_to_dict(r) for r in report.results],
        "refused": list(report.refused),
        "checks": [{**credential_to_dict(c), **verdict_to_dict(v)} for c, v in report.checks],
        "errors": list(report.errors),
        "total_s": round(report.total_s, 4),
    }
