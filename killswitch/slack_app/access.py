"""Who may run mutating commands where: on-call user ids, the on-call user group, channels."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from killswitch.errors import RefusedError
from killswitch.settings import SlackAppSettings

GROUP_CACHE_S = 60.0


class NotOnCallError(RefusedError):
    code = "not-on-call"
    remediation = "Ask the on-call engineer (or join the on-call user group) to run it."


class ChannelNotAllowedError(RefusedError):
    code = "channel-not-allowed"
    remediation = "Run the command in one of the incident channels the kill switch serves."


class Access:
    """On-call membership: the configured ids, plus the user group's members (cached)."""

    def __init__(self, config: SlackAppSettings, client: WebClient) -> None:
        self.config = config
        self.client = client
        self._lock = threading.Lock()
        self._members: tuple[float, frozenset[str]] = (0.0, frozenset())

    def group_members(self) -> frozenset[str]:
        """usergroups.users.list of the on-call group, refreshed every minute."""
        if not self.config.oncall_usergroup:
            return frozenset()
        with self._lock:
            fetched, members = self._members
            if time.monotonic() - fetched < GROUP_CACHE_S:
                return members
        try:
            response = self.client.usergroups_users_list(usergroup=self.config.oncall_usergroup)
            members = frozenset(response.get("users") or [])
        except SlackApiError:
            members = frozenset()  # fail closed: only the explicit ids may act
        with self._lock:
            self._members = (time.monotonic(), members)
        return members

    def is_oncall(self, user_id: str) -> bool:
        return user_id in self.config.oncall_user_ids or user_id in self.group_members()

    def check(self, user_id: str, channel_id: str) -> None:
        """Refuse a mutating command from outside the on-call group or allowed channels."""
        allowed = self.config.allowed_channels
        if allowed and channel_id not in allowed:
            raise ChannelNotAllowedError(f"channel {channel_id} is not an incident channel")
        if not self.is_oncall(user_id):
            raise NotOnCallError(
                f"<@{user_id}> is not on call: only on-call may contain or restore"
            )
