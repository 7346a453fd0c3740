"""OpenAI revoker (httpx): project API keys, deleted with the organisation admin key
(`DELETE /organization/projects/{project}/api_keys/{key}` — irreversible: OpenAI has no
disable) and probed with the key itself against `GET /models` until it answers 401 with
`invalid_api_key` (a restricted key missing a scope gets 401 with `code: null`: not dead).
Credential refs are `<project id>/<key id>`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

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
        "contain": ("admin key: api.management.write (DELETE project api_keys)",),
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
        """GET /organization/projects, then each project's /api_keys, page by page. A key
        names its agent by its name (`<agent-id>` or `<agent-id>/<purpose>`)."""
        for project in self.pages("/organization/projects", cursor="after"):
            path = f"/organization/projects/{project['id']}/api_keys"
            for key in self.pages(path, cursor="after"):
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
        path = self._path(action.target)
        response = await self.request("DELETE", path, headers=self.admin_headers())
        if response.status_code == 404:
            return "key deleted already", None
        if response.status_code != 200 or not response.json().get("deleted"):
            raise self.refused(response, f"DELETE {path}")
        return "project key deleted (irreversible)", {}

    async def aprobe(self, credential: Credential, material: Material) -> ProbeAttempt:
        key = material.get("api_key")
        if not key:
            return ProbeAttempt(ProbeOutcome.INCONCLUSIVE, "probe material lacks the api_key")
        response = await self.request("GET", "/models", headers={"Authorization": f"Bearer {key}"})
        return classify(response.status_code, _json(response))

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
