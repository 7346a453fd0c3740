"""OpenAI revoker (httpx): project API keys, deleted with the organisation admin key —
irreversible: OpenAI has no disable. A key a user owns goes with
`DELETE /organization/projects/{project}/api_keys/{key}`; a key a service account owns
cannot (OpenAI answers 400): it goes with its service account,
`DELETE /organization/projects/{project}/service_accounts/{id}`, which takes every key of
that account with it. Probed with the key itself against `GET /models` until it answers
401 with `invalid_api_key`; a restricted key missing the probe's scope gets 401 with
`code: null` — never dead, and seen at the baseline it means this probe cannot show a kill.
Credential refs are `<project id>/<key id>`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from killswitch.errors import ProviderError
from killswitch.models import Action, Credential, Nhi, Verdict, VerdictStatus
from killswitch.secrets import Material
from revokers.base import ProbeAttempt, ProbeOutcome, revoker
from revokers.http import HttpRevoker

# (HTTP status, error.code) answers to GET /models that mean the key is dead; any other
# answer is inconclusive. Only the code is kept: the message repeats part of the key.
DEAD: frozenset[tuple[int, str]] = frozenset({(401, "invalid_api_key")})


def classify(status: int, body: Any) -> ProbeAttempt:
    """A GET /models answer: 200 authenticates, an allow-listed 401 rejects, else nothing."""
    if status == 200:
        return ProbeAttempt(ProbeOutcome.ACCEPTED, "GET /models with the agent's key: 200")
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code")) if isinstance(error, dict) and error.get("code") else ""
    said = f"GET /models → {status} {code or '(no error code)'}"
    if (status, code) in DEAD:
        return ProbeAttempt(ProbeOutcome.REJECTED, said, code)
    if status == 401:
        said += " (not invalid_api_key: e.g. a restricted key missing a scope)"
    return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, said, code)


def control(status: int, body: Any) -> ProbeAttempt:
    """A GET /models answer before containment: a 401 that is not `invalid_api_key` (a
    restricted key without `api.model.read`) is a refusal of this probe, so no later
    rejection of it can prove a kill."""
    attempt = classify(status, body)
    if status == 401 and attempt.outcome is ProbeOutcome.INCONCLUSIVE:
        return ProbeAttempt(
            ProbeOutcome.REJECTED,
            f"GET /models → 401 {attempt.code or '(no error code)'}: this key is refused the "
            "probe already (a restricted key without api.model.read?)",
            attempt.code,
        )
    return attempt


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@revoker("openai")
class OpenAIRevoker(HttpRevoker):
    credential_kinds = ("openai.api-key",)
    grant_kinds = ()
    operation = "delete-project-key"
    reversible = False
    enumerable = True
    permissions = {
        "discover": ("admin key: api.management.read (list projects and their keys, sweep)",),
        "contain": (
            "admin key: api.management.read (GET a project api_key: its owner)",
            "admin key: api.management.write (DELETE project api_keys; DELETE project "
            "service_accounts for keys a service account owns)",
        ),
        "detach": (),
        "probe": ("GET /models with the key itself", "admin key: api.management.read (read-back)"),
        "restore": (),
    }

    @classmethod
    def permission_policy(cls) -> dict[str, Any]:
        return {
            "admin_key": "an organisation admin key (sk-admin-…) allowed to manage project API keys"
        }

    def enumerate(self) -> Iterator[Nhi]:
        """GET /organization/projects, then each project's /api_keys with
        `owner_project_access=any`, page by page (without it OpenAI applies membership-based
        visibility and may leave out enabled keys of owners who lost project access). A key
        names its agent by its name (`<agent-id>` or `<agent-id>/<purpose>`)."""
        for project in self.pages("/organization/projects", cursor="after"):
            path = f"/organization/projects/{project['id']}/api_keys"
            for key in self.pages(path, cursor="after", owner_project_access="any"):
                yield Nhi(
                    provider="openai",
                    kind="openai.api-key",
                    ref=f"{project['id']}/{key['id']}",
                    principal=f"openai:{project['id']}",
                    agent_tag=str(key.get("name") or "").split("/", 1)[0],
                    created_at=_epoch(key.get("created_at")),
                    last_used_at=_epoch(key.get("last_used_at")),
                    detail=f"project {project.get('name', project['id'])}",
                )

    @staticmethod
    def _path(ref: str) -> str:
        project, _, key = ref.partition("/")
        return f"/organization/projects/{project}/api_keys/{key}"

    async def aperform(
        self, action: Action, materials: Sequence[Material]
    ) -> tuple[str, Mapping[str, Any] | None]:
        """GET the key (who owns it), then DELETE …/api_keys/{key} for a user's key, or
        DELETE …/service_accounts/{id} for a service account's."""
        path = self._path(action.target)
        found = await self.request("GET", path, headers=self.admin_headers())
        if found.status_code == 404:
            return "key deleted already", None
        if found.status_code != 200:
            raise self.refused(found, f"GET {path}")
        owner = (_json(found) or {}).get("owner") or {}
        if owner.get("type") == "service_account":
            return await self._delete_account(action.target, owner.get("service_account") or {})
        response = await self.request("DELETE", path, headers=self.admin_headers())
        if response.status_code == 404:
            return "key deleted already", None
        if response.status_code != 200 or not (_json(response) or {}).get("deleted"):
            raise self.refused(response, f"DELETE {path}")
        return "project key deleted (irreversible)", {}

    async def _delete_account(
        self, ref: str, account: Mapping[str, Any]
    ) -> tuple[str, Mapping[str, Any] | None]:
        account_id = str(account.get("id") or "")
        if not account_id:
            raise ProviderError(
                f"openai key {ref} is owned by a service account OpenAI did not name",
                provider="openai",
                provider_code="no-service-account-id",
            )
        project = ref.partition("/")[0]
        path = f"/organization/projects/{project}/service_accounts/{account_id}"
        response = await self.request("DELETE", path, headers=self.admin_headers())
        if response.status_code == 404:
            return f"service account {account_id} deleted already", None
        if response.status_code != 200 or not (_json(response) or {}).get("deleted"):
            raise self.refused(response, f"DELETE {path}")
        return (
            f"key owned by service account {account_id} ({account.get('name', '?')}): "
            f"DELETE {path} — the service account and every key it held deleted "
            "(OpenAI refuses to delete a service account's key by itself; irreversible)",
            {"service_account": account_id},
        )

    async def _models(self, material: Material) -> tuple[int, Any] | None:
        key = material.get("api_key")
        if not key:
            return None
        response = await self.request("GET", "/models", headers={"Authorization": f"Bearer {key}"})
        return response.status_code, _json(response)

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        answer = await self._models(material)
        if answer is None:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the api_key")
        return classify(*answer)

    def baseline(self, credential: Credential, material: Material) -> ProbeAttempt:
        """GET /models before containment, read by `control`."""
        answer = self._loop.run(self._models(material))
        if answer is None:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the api_key")
        return control(*answer)

    async def aread_back(self, credential: Credential) -> Verdict:
        path = self._path(credential.ref)
        response = await self.request("GET", path, headers=self.admin_headers())
        to_prove = "put the key in a secret source to probe it"
        if response.status_code == 404:
            return Verdict(
                VerdictStatus.UNVERIFIED,
                f"read back: GET {path} → 404 (deleted)",
                to_prove=to_prove,
            )
        return Verdict(
            VerdictStatus.UNKNOWN,
            f"read back: GET {path} → {response.status_code} (still listed)",
            to_prove=to_prove,
        )


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(float(value), UTC) if value else None
