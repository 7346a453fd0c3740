"""AWS's sandbox plug-in: moto's server (auth enforcement on) in the daemon, behind a fault
proxy that throttles the way IAM does; the demo fleet's users, keys, roles and sessions; the
sweep's stale, long-lived, expired, orphaned and reused keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from killswitch.sandbox.plugin import Host, Hosted, Sandbox, StandIn

if TYPE_CHECKING:
    from killswitch.sandbox.aws.fleet import Seeder
    from killswitch.secrets import MaterialStore

THROTTLING = (
    b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender'
    b"</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>"
    b"sandbox-proxy</RequestId></ErrorResponse>"
)


@dataclass(frozen=True, slots=True)
class AwsStandIn:
    """moto, in-process in the daemon (`stand_ins.moto`: direct and proxied URLs)."""

    fault_target: str | None = "aws"

    def serve(self, host: Host) -> Hosted:
        """Start moto's threaded server on a free port and put the `aws` proxy before it."""
        from moto.server import ThreadedMotoServer
        from starlette.routing import Route

        from killswitch.sandbox.aws import fleet, iam_extras, sweep
        from killswitch.sandbox.aws.lag import IamLag
        from killswitch.sandbox.proxy import canned
        from killswitch.sandbox.tokens import Lag

        iam_extras.install()  # service-specific credentials; DeleteUser's real conflicts
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        _, port = server.get_host_and_port()
        url = f"http://127.0.0.1:{port}"
        # The IAM query protocol's own throttling error, not a 429; IAM's propagation delay
        # (off until `killswitch sandbox lag aws SECONDS`) in the same proxy.
        lag = IamLag()
        proxied = host.proxy("aws", int(port), canned(400, THROTTLING, "text/xml"), lag)

        def reset() -> None:
            lag.configure(Lag())
            fleet.reset(url)

        return Hosted(
            stand_ins={"moto": {"url": url, "proxied": proxied}},
            routes=[Route("/_sandbox/aws/backdate", sweep.backdate_route, methods=["POST"])],
            reset=reset,
            stop=server.stop,
            lag=lag.configure,
        )

    def material(self, stand_ins: Mapping[str, Any]) -> Mapping[str, MaterialStore]:
        """None: probe material of AWS keys goes to the other stores."""
        return {}

    def bootstrap(self, sandbox: Sandbox) -> Seeder:
        """The kill switch's own admin and the break-glass user, then auth enforcement on."""
        from killswitch.sandbox.aws import fleet

        admin = fleet.bootstrap(str(sandbox.stand_ins["moto"]["url"]), sandbox.store)
        return fleet.Seeder(admin, sandbox)

    def attach(self, sandbox: Sandbox, providers: Mapping[str, Any]) -> Seeder:
        """The kill switch's identity from `providers.aws`, direct (seeding is never faulted)."""
        from killswitch.sandbox.aws import fleet

        aws, url = providers["aws"], str(sandbox.stand_ins["moto"]["url"])
        admin = fleet.Admin(url, aws["access_key_id"], aws["secret_access_key"])
        return fleet.Seeder(admin, sandbox)


STAND_IN: StandIn = AwsStandIn()
