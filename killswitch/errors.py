"""One error tree: every failure the kill switch reports carries a stable code and a remediation."""

from __future__ import annotations

import copy


class KillSwitchError(Exception):
    """Base of every error the kill switch raises on purpose."""

    code = "killswitch-error"
    remediation = "See the runbooks for this error code."
    exit_code = 3

    def __init__(self, message: str, *, remediation: str | None = None) -> None:
        super().__init__(message)
        if remediation is not None:
            self.remediation = remediation

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class RefusedError(KillSwitchError):
    """Input that the kill switch will not act on; nothing was changed."""

    code = "refused"
    remediation = "Fix the input; nothing was changed."
    exit_code = 2


class InvalidAgentIdError(RefusedError):
    code = "invalid-agent-id"
    remediation = (
        "Agent ids are 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter "
        "or digit; wildcards are never accepted."
    )


class UnknownAgentError(RefusedError):
    code = "unknown-agent"
    remediation = (
        "Check the id with `killswitch inventory list`; only known agents can be acted on."
    )


class ProtectedIdentityError(RefusedError):
    code = "protected-identity"
    remediation = (
        "Protected identities (break-glass admins, the kill switch's own identity) are never "
        "touched; remove the id from settings.protected_agents only through change control."
    )


class NothingToRestoreError(RefusedError):
    code = "nothing-to-restore"
    remediation = "`killswitch audit show --agent ID` lists what was done to the agent."


class DecommissionedError(RefusedError):
    code = "decommissioned"
    remediation = "Issue the agent new credentials and add it to the inventory again."


class ConfirmationRequiredError(RefusedError):
    code = "confirmation-required"
    remediation = "Review the plan with --dry-run, then run the same command with --yes."


class ConfigurationError(KillSwitchError):
    code = "configuration"
    remediation = "Check the profile (KILLSWITCH_PROFILE) and KILLSWITCH_* environment variables."


class StorageError(KillSwitchError):
    """The ledger's or the inventory's database refused a write (locked past its busy
    timeout, disk full, I/O error): the run stopped there."""

    code = "storage"
    remediation = (
        "The run stopped at its last ledger entry. Free the database (another process holds "
        "it locked, or the disk is full), run `killswitch audit verify` and `killswitch audit "
        "unfinished`, then run the same command again: every step is idempotent."
    )


class SandboxError(KillSwitchError):
    code = "sandbox"
    remediation = (
        "Run `killswitch sandbox status`; `killswitch sandbox down` then `up` starts over."
    )


class ProviderError(KillSwitchError):
    """A provider answered with an error that retrying will not fix."""

    code = "provider-error"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        provider_code: str = "",
        remediation: str | None = None,
    ) -> None:
        super().__init__(message, remediation=remediation)
        self.provider = provider
        self.provider_code = provider_code


class NotFoundError(ProviderError):
    """The target no longer exists at the provider (for a revocation: already gone)."""

    code = "not-found"


class OwnIdentityError(ProviderError):
    """The kill switch's own identity was refused: never retried, always paged."""

    code = "own-identity-refused"
    remediation = (
        "The kill switch's own credentials were refused or lack a permission: check them and "
        "`killswitch permissions <provider>`; page the platform owner."
    )


class TransientError(ProviderError):
    """Throttling, 5xx, timeouts, resets: the only errors that are retried."""

    code = "transient"
    remediation = "The provider was slow or unavailable; retried until the deadline."

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        provider_code: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, provider_code=provider_code)
        self.retry_after = retry_after


class SilentProviderError(TransientError):
    """A provider that did not answer within the deadline (a black hole, a hung connection)."""

    code = "provider-silent"
    remediation = (
        "The provider did not answer within the deadline: check its status and the network "
        "path to it, then run the command again."
    )


def own_copy(error: BaseException) -> BaseException:
    """A copy of an error that several threads learned of together (a group commit's, a
    coalesced write's) for one of them to raise: a traceback is the raiser's own, and one
    exception object raised in several threads at once would have them write over it. The
    copy keeps the original's cause, context and traceback (where it failed); an error that
    cannot be copied is given as it is."""
    try:
        clone = copy.copy(error)
    except Exception:  # keyword-only arguments (ours): its args and attributes, as they are
        try:
            clone = type(error).__new__(type(error), *error.args)
            clone.__dict__.update(error.__dict__)
        except Exception:
            return error
    if type(clone) is not type(error) or clone.args != error.args:
        return error
    clone.__cause__, clone.__context__ = error.__cause__, error.__context__
    clone.__suppress_context__ = error.__suppress_context__
    return clone.with_traceback(error.__traceback__)
