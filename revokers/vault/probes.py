"""Probes: the agent's own token, secret-id or password, tried against Vault itself.

A disabled entity makes Vault answer 403 `permission denied` to every request with one of
its tokens and to every login through one of its aliases. A successful probe login mints a
token: it is revoked at once. Leases are probed by lookup: `invalid lease` once revoked.
"""

from __future__ import annotations

import logging

import hvac
from hvac import exceptions as hv
from requests import exceptions as rq
from tenacity import retry_if_exception

from killswitch.errors import KillSwitchError, NotFoundError
from killswitch.models import Credential, Verdict, VerdictStatus
from killswitch.retry import retrying_call
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome
from revokers.vault.client import Clients, retried
from revokers.vault.errors import _message, translate

log = logging.getLogger(__name__)
REJECTIONS = (hv.Forbidden, hv.Unauthorized)
REVOKE_OWN_S = 5.0


def _said(call: str, exc: Exception) -> str:
    return f"{call} → {type(exc).__name__}: {_message(exc)}"


def _token(clients: Clients, material: Material, read_path: str | None) -> ProbeAttempt:
    token = material.get("token")
    if not token:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the token")
    client = clients.with_token(token)
    try:
        client.auth.token.lookup_self()
    except REJECTIONS as exc:
        said = _said("auth/token/lookup-self", exc)
        if read_path is None:
            return ProbeAttempt(ProbeOutcome.REJECTED, said)
        try:
            client.adapter.get(f"/v1/{read_path}")
        except REJECTIONS as read_exc:
            return ProbeAttempt(ProbeOutcome.REJECTED, f"{said}; {_said(read_path, read_exc)}")
        return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{said}, but {read_path} still reads")
    return ProbeAttempt(
        ProbeOutcome.ACCEPTED, "auth/token/lookup-self with the agent's token succeeded"
    )


def _login(clients: Clients, credential: Credential, material: Material) -> ProbeAttempt:
    """An AppRole (role_id + secret_id) or userpass (username + password) login."""
    client = clients.anonymous()
    try:
        if credential.kind == "vault.secret-id":
            mount = credential.state.split("/")[0] or "approle"
            call = f"auth/{mount}/login"
            role_id, secret_id = material.get("role_id"), material.get("secret_id")
            if not role_id or not secret_id:
                return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "material lacks role_id/secret_id")
            client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
        else:
            mount = credential.ref.removeprefix("auth/").rsplit("/", 1)[0]
            username, password = material.get("username"), material.get("password")
            call = f"auth/{mount}/login/{username}"
            if not username or not password:
                return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "material lacks username/password")
            client.auth.userpass.login(username, password, mount_point=mount)
    except (*REJECTIONS, hv.InvalidRequest) as exc:  # InvalidRequest: destroyed, unknown
        return ProbeAttempt(ProbeOutcome.REJECTED, _said(call, exc))
    _revoke_own_login(client)
    return ProbeAttempt(ProbeOutcome.ACCEPTED, f"{call} with the agent's secret succeeded")


def _revoke_own_login(client: hvac.Client) -> None:
    """Never leave a live token behind a probe: the login minted one for the agent, which
    the next discovery would find (and no secret of it to prove its death). Retried on a
    transient answer for a few seconds; given up on silently after that."""
    retrying = retrying_call(REVOKE_OWN_S, when=retry_if_exception(retried))
    try:
        retrying(client.auth.token.revoke_self)
    except (hv.VaultError, rq.RequestException):
        log.warning("a probe login's own token could not be revoked (it expires with its TTL)")


def _lease(clients: Clients, credential: Credential) -> ProbeAttempt:
    try:
        clients.own().sys.read_lease(credential.ref)
    except hv.InvalidRequest as exc:
        return ProbeAttempt(ProbeOutcome.REJECTED, _said("sys/leases/lookup", exc))
    return ProbeAttempt(ProbeOutcome.ACCEPTED, "sys/leases/lookup: the lease is still live")


def probe(
    clients: Clients, credential: Credential, material: Material, read_path: str | None
) -> ProbeAttempt:
    try:
        if credential.kind == "vault.token":
            return _token(clients, material, read_path)
        if credential.kind == "vault.lease":
            return _lease(clients, credential)
        return _login(clients, credential, material)
    except (hv.VaultError, rq.RequestException) as exc:
        return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, _said(credential.kind, exc))


def read_back(clients: Clients, credential: Credential) -> Verdict:
    """No secret to probe with: read the entity back (disabled = every login refused)."""
    to_prove = f"no secret material for {credential.ref}: add it to a secret source to probe it"
    entity_id = credential.principal.rsplit("/", 1)[-1]
    try:
        data = clients.own().secrets.identity.read_entity(entity_id)["data"]
    except Exception as exc:
        error = translate(exc, doing=f"read back entity {entity_id}")
        if isinstance(error, NotFoundError):
            return Verdict(
                VerdictStatus.UNVERIFIED,
                f"read back: entity {entity_id} deleted",
                to_prove=to_prove,
            )
        return Verdict(
            VerdictStatus.UNKNOWN, f"read-back failed: {error.message}", to_prove=to_prove
        )
    except KillSwitchError as error:
        return Verdict(VerdictStatus.UNKNOWN, f"read-back failed: {error.message}")
    if data.get("disabled"):
        return Verdict(
            VerdictStatus.UNVERIFIED,
            f"read back: entity {data.get('name')} disabled",
            to_prove=to_prove,
        )
    return Verdict(
        VerdictStatus.UNKNOWN,
        f"read back: entity {data.get('name')} is NOT disabled",
        to_prove=to_prove,
    )
