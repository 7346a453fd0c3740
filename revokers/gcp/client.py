"""The IAM and Resource Manager clients with the kill switch's own identity: gRPC over an
explicit channel to the sandbox's stand-in, or Google's endpoints with Application Default
Credentials in production."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.cloud import iam_admin_v1, resourcemanager_v3
from google.cloud.iam_admin_v1.services.iam.transports.grpc import IAMGrpcTransport
from google.cloud.resourcemanager_v3.services.projects.transports.grpc import (
    ProjectsGrpcTransport,
)

from revokers.gcp.settings import GcpSettings


@dataclass
class Clients:
    iam: iam_admin_v1.IAMClient
    projects: resourcemanager_v3.ProjectsClient
    channel: grpc.Channel | None = None

    @classmethod
    def open(cls, config: GcpSettings) -> Clients:
        if config.grpc_target:
            # An explicit channel: with an endpoint and anonymous credentials the client
            # would try TLS and retry for a minute (shared PROVIDERS.md).
            channel = grpc.insecure_channel(config.grpc_target)
            return cls(
                iam_admin_v1.IAMClient(transport=IAMGrpcTransport(channel=channel)),
                resourcemanager_v3.ProjectsClient(transport=ProjectsGrpcTransport(channel=channel)),
                channel,
            )
        return cls(iam_admin_v1.IAMClient(), resourcemanager_v3.ProjectsClient())

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
