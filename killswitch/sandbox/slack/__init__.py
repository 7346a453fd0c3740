"""Slack's sandbox plug-in: the Web API stand-in on the shared HTTP app (behind its proxy),
the kill switch's own Slack app in it, a bot token per agent, and `demo --via-slack`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.http import PROXY
from killswitch.sandbox.minting import Mint, Minted
from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn

if TYPE_CHECKING:
    from killswitch.sandbox.slack.app import Seeder
    from killswitch.secrets import MaterialStore


def _tokens(sandbox: Sandbox) -> Minted:
    return Minted("slack", sandbox, (Mint("token"),), "/slack/api/")


@dataclass(frozen=True, slots=True)
class SlackStandIn:
    """Routes on the shared HTTP app; `/_sandbox/seed` mints `{"kind", "ip_allowlist"}`
    tokens."""

    fault_target: str | None = PROXY

    def serve(self, host: Host) -> Hosted:
        """The Web API routes; a reset forgets the messages."""
        from killswitch.sandbox.slack.api import Board, mint, routes

        board = Board()
        return Hosted(
            routes=routes(host.tokens, board),
            mint=lambda body: mint(
                host.tokens,
                str(body["owner"]),
                str(body.get("kind", "slack.bot-token")),
                [str(n) for n in body.get("ip_allowlist") or ()],
            ),
            reset=board.clear,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """The kill switch's own Slack app: bot token, signing secret, on-call group."""
        from killswitch.sandbox.slack.app import Seeder, slack_app

        tokens = _tokens(sandbox)
        return Seeder(tokens, slack_app(tokens.url))

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """The app from `providers.slack_app`."""
        from killswitch.sandbox.slack.app import Seeder

        app = {k: v for k, v in providers["slack_app"].items() if k != "api_url"}
        return Seeder(_tokens(sandbox), app)


STAND_IN: StandIn = SlackStandIn()
