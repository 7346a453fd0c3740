"""The Entra token endpoint's client-credentials grant: the kill switch's own app, and the
agents' apps with a secret of their service principal or of their application object.

Order as Entra's: tenant, grant type, app (AADSTS700016), a service-error fault if one is
set for the app (AADSTS90024 / 90033), the secret (AADSTS7000215), the principal disabled
(AADSTS7000112). In propagation mode a secret removed, or a principal disabled, less than
`propagation_s` ago still gets a token, as a replica that has not heard of it yet would."""

from __future__ import annotations

import secrets
import time

from starlette.responses import JSONResponse

from killswitch.sandbox.azure.state import AzureState, aad_error

# Entra's service errors (the sign-in error code table): retry later, never a dead secret.
# Which HTTP status Entra sends them with is not documented: the fault says (400 keeps the
# body in azure-identity's message; MSAL drops the body of a 5xx: "HTTP Error: 503").
SERVICE_ERRORS: dict[int, tuple[str, str]] = {
    90024: (
        "temporarily_unavailable",
        "RequestBudgetExceededError - A transient error has occurred. Try again.",
    ),
    90033: (
        "temporarily_unavailable",
        "MsodsServiceUnavailable - The Microsoft Online Directory Service (MSODS) isn't available.",
    ),
}


def issued(state: AzureState, own: bool) -> JSONResponse:
    access = "eyJ0eXAiOiJKV1QiLCJ" + secrets.token_urlsafe(48)
    if own:
        state.tokens[access] = time.time() + 3599
    return JSONResponse(
        {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access}
    )


def answer(state: AzureState, tenant: str, form: dict[str, str]) -> JSONResponse:
    """POST /{tenant}/oauth2/v2.0/token (grant_type=client_credentials)."""
    if tenant != state.tenant_id:
        return aad_error(state, 400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    if form.get("grant_type") != "client_credentials":
        return aad_error(
            state,
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        )
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    with state.lock:
        if client_id == state.own_app_id:
            if not secrets.compare_digest(secret, state.own_secret):
                return aad_error(
                    state, 401, "invalid_client", 7000215, "Invalid client secret provided."
                )
            return issued(state, own=True)
        principal = state.by_app(client_id)
        if principal is None:
            return aad_error(
                state,
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the "
                f"directory '{state.tenant_id}'.",
            )
        fault = state.faults.get(client_id)
        if fault is not None:
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    del state.faults[client_id]
            error, text = SERVICE_ERRORS[fault.code]
            return aad_error(state, fault.status, error, fault.code, text)
        application = state.application_of(client_id)
        values = [s.value for s in principal.secrets.values()]
        values += [s.value for s in application.passwords.values()] if application else []
        if not any(secrets.compare_digest(secret, v) for v in values) and not any(
            app == client_id and secrets.compare_digest(secret, v) and state.still_propagating(at)
            for app, v, at in state.removed
        ):
            return aad_error(
                state,
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the "
                "request is the client secret value, not the client secret ID, for a "
                f"secret added to app '{client_id}'.",
            )
        if not principal.enabled and not state.still_propagating(
            state.disabled_at.get(principal.id)
        ):
            return aad_error(
                state,
                400,
                "unauthorized_client",
                7000112,
                f"Application '{client_id}'({principal.display_name}) is disabled.",
            )
    return issued(state, own=False)
