"""GCP stand-in: a gRPC server registering `google.iam.admin.v1.IAM` (service accounts and
their keys) and `google.cloud.resourcemanager.v3.Projects` (the project's IAM policy), with
the request and response types that ship in google-cloud-iam and
google-cloud-resource-manager.
The OAuth2 token endpoint lives in `token.py`.

Errors as Google's: gRPC NOT_FOUND with "… does not exist.", ABORTED on a stale policy etag,
and `invalid_grant` from the token endpoint for a disabled or deleted key or account.
Weaker than GCP: no caller authentication on the gRPC side (anyone on loopback may call it).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.cloud import iam_admin_v1 as iam
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2

from killswitch.sandbox.gcp.state import PROJECT, Account, GcpState, Key

T = TypeVar("T")


class IamService:
    """The `google.iam.admin.v1.IAM` methods the kill switch and the sandbox use."""

    def __init__(self, state: GcpState) -> None:
        self.state = state

    def _found(self, context: grpc.ServicerContext, call: Callable[[], T]) -> T:
        try:
            with self.state.lock:
                return call()
        except LookupError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise  # abort raises; this line is for the type checker

    def list_accounts(
        self, request: iam.ListServiceAccountsRequest, context: grpc.ServicerContext
    ) -> iam.ListServiceAccountsResponse:
        size = request.page_size if 0 < request.page_size <= 100 else 20
        start = int(request.page_token or 0)
        with self.state.lock:
            accounts = sorted(self.state.accounts.values(), key=lambda a: a.email)
            page = [a.message() for a in accounts[start : start + size]]
        more = start + size < len(accounts)
        return iam.ListServiceAccountsResponse(
            accounts=page, next_page_token=str(start + size) if more else ""
        )

    def get_account(
        self, request: iam.GetServiceAccountRequest, context: grpc.ServicerContext
    ) -> iam.ServiceAccount:
        return self._found(context, lambda: self.state.account(request.name).message())

    def create_account(
        self, request: iam.CreateServiceAccountRequest, context: grpc.ServicerContext
    ) -> iam.ServiceAccount:
        email = f"{request.account_id}@{PROJECT}.iam.gserviceaccount.com"
        with self.state.lock:
            if email in self.state.accounts:
                context.abort(
                    grpc.StatusCode.ALREADY_EXISTS,
                    f"Service account {request.account_id} already exists within project "
                    f"projects/{PROJECT}.",
                )
            account = Account(
                email=email,
                unique_id=str(10**20 + secrets.randbelow(10**20)),
                display_name=request.service_account.display_name,
                description=request.service_account.description,
            )
            self.state.accounts[email] = account
            return account.message()

    def _set(self, find: Callable[[str], Any], disabled: bool) -> Any:
        """Disable… / Enable… of whatever `find(name)` returns (an account, or a key)."""

        def handler(request: Any, context: grpc.ServicerContext) -> empty_pb2.Empty:
            def flip() -> None:
                find(request.name).disabled = disabled

            self._found(context, flip)
            return empty_pb2.Empty()

        return handler

    def delete_account(
        self, request: iam.DeleteServiceAccountRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        def delete() -> None:
            account = self.state.account(request.name)
            del self.state.accounts[account.email]
            member = f"serviceAccount:{account.email}"
            for binding in self.state.policy.bindings:  # Google marks them deleted:
                if member in binding.members:
                    binding.members.remove(member)
                    binding.members.append(f"deleted:{member}?uid={account.unique_id}")

        self._found(context, delete)
        return empty_pb2.Empty()

    def list_keys(
        self, request: iam.ListServiceAccountKeysRequest, context: grpc.ServicerContext
    ) -> iam.ListServiceAccountKeysResponse:
        def keys() -> list[iam.ServiceAccountKey]:
            account = self.state.account(request.name)
            return [account.key_message(k) for k in account.keys.values()]

        system_only = list(request.key_types) == [
            iam.ListServiceAccountKeysRequest.KeyType.SYSTEM_MANAGED
        ]
        return iam.ListServiceAccountKeysResponse(
            keys=[] if system_only else self._found(context, keys)
        )

    def get_key(
        self, request: iam.GetServiceAccountKeyRequest, context: grpc.ServicerContext
    ) -> iam.ServiceAccountKey:
        def get() -> iam.ServiceAccountKey:
            account, key = self.state.key(request.name)
            return account.key_message(key)

        return self._found(context, get)

    def create_key(
        self, request: iam.CreateServiceAccountKeyRequest, context: grpc.ServicerContext
    ) -> iam.ServiceAccountKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key = Key(
            id=secrets.token_hex(20),
            public_pem=private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            created=time.time(),
        )
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

        def create() -> iam.ServiceAccountKey:
            account = self.state.account(request.name)
            account.keys[key.id] = key
            info = {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": key.id,
                "private_key": pem,
                "client_email": account.email,
                "client_id": account.unique_id,
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": self.state.token_uri,
            }
            return account.key_message(key, json.dumps(info).encode())

        return self._found(context, create)

    def _key(self, name: str) -> Key:
        return self.state.key(name)[1]

    def delete_key(
        self, request: iam.DeleteServiceAccountKeyRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        def delete() -> None:
            account, key = self.state.key(request.name)
            del account.keys[key.id]

        self._found(context, delete)
        return empty_pb2.Empty()

    def handlers(self) -> grpc.GenericRpcHandler:
        def unary(call: Any, request: Any, response: Any) -> grpc.RpcMethodHandler:
            return grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=request.deserialize,
                response_serializer=response.serialize
                if hasattr(response, "serialize")
                else response.SerializeToString,
            )

        empty = empty_pb2.Empty
        return grpc.method_handlers_generic_handler(
            "google.iam.admin.v1.IAM",
            {
                "ListServiceAccounts": unary(
                    self.list_accounts,
                    iam.ListServiceAccountsRequest,
                    iam.ListServiceAccountsResponse,
                ),
                "GetServiceAccount": unary(
                    self.get_account, iam.GetServiceAccountRequest, iam.ServiceAccount
                ),
                "CreateServiceAccount": unary(
                    self.create_account, iam.CreateServiceAccountRequest, iam.ServiceAccount
                ),
                "DisableServiceAccount": unary(
                    self._set(self.state.account, True), iam.DisableServiceAccountRequest, empty
                ),
                "EnableServiceAccount": unary(
                    self._set(self.state.account, False), iam.EnableServiceAccountRequest, empty
                ),
                "DeleteServiceAccount": unary(
                    self.delete_account, iam.DeleteServiceAccountRequest, empty
                ),
                "ListServiceAccountKeys": unary(
                    self.list_keys,
                    iam.ListServiceAccountKeysRequest,
                    iam.ListServiceAccountKeysResponse,
                ),
                "GetServiceAccountKey": unary(
                    self.get_key, iam.GetServiceAccountKeyRequest, iam.ServiceAccountKey
                ),
                "CreateServiceAccountKey": unary(
                    self.create_key, iam.CreateServiceAccountKeyRequest, iam.ServiceAccountKey
                ),
                "DisableServiceAccountKey": unary(
                    self._set(self._key, True), iam.DisableServiceAccountKeyRequest, empty
                ),
                "EnableServiceAccountKey": unary(
                    self._set(self._key, False), iam.EnableServiceAccountKeyRequest, empty
                ),
                "DeleteServiceAccountKey": unary(
                    self.delete_key, iam.DeleteServiceAccountKeyRequest, empty
                ),
            },
        )


CONDITIONAL = 3  # the policy version that can hold conditional role bindings
VERSIONS_HELP = (
    "For more information, please refer to https://cloud.google.com/iam/docs/policies#versions."
)


def too_low(which: str, asked: int, stored: int) -> str:
    """Google's INVALID_ARGUMENT text for a policy version below the stored one (as quoted
    in client-library and Terraform issues)."""
    return (
        f"{which} policy version ({asked}) cannot be less than the existing policy version "
        f"({stored}). {VERSIONS_HELP}"
    )


class ProjectsService:
    """`google.cloud.resourcemanager.v3.Projects` GetIamPolicy / SetIamPolicy for the one
    sandbox project, with etag concurrency control (a stale etag → ABORTED) and the policy
    version rule of `google/iam/v1/policy.proto` (INVALID_ARGUMENT below version 3 once any
    binding has a condition)."""

    def __init__(self, state: GcpState) -> None:
        self.state = state

    def _project(self, resource: str, context: grpc.ServicerContext) -> None:
        if resource != f"projects/{PROJECT}":
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission 'resourcemanager.projects.getIamPolicy' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/{resource}' (or it may not exist).",
            )

    def get(
        self, request: iam_policy_pb2.GetIamPolicyRequest, context: grpc.ServicerContext
    ) -> policy_pb2.Policy:
        """A policy with conditional bindings is given only to `requested_policy_version=3`."""
        self._project(request.resource, context)
        with self.state.lock:
            stored, asked = self.state.policy.version, request.options.requested_policy_version
            if asked < stored:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    too_low("Requested", request.options.requested_policy_version, stored),
                )
            return policy_pb2.Policy.FromString(self.state.policy.SerializeToString())

    def set(
        self, request: iam_policy_pb2.SetIamPolicyRequest, context: grpc.ServicerContext
    ) -> policy_pb2.Policy:
        """Etag concurrency control, and the version rule: a write that keeps an etag must be
        version 3 when the stored policy or the new one has conditions (without an etag, a
        version-1 write overwrites the conditions, as Google's docs warn)."""
        self._project(request.resource, context)
        with self.state.lock:
            if request.policy.etag and request.policy.etag != self.state.policy.etag:
                context.abort(
                    grpc.StatusCode.ABORTED,
                    "There were concurrent policy changes. Please retry the whole "
                    "read-modify-write with exponential backoff.",
                )
            policy = policy_pb2.Policy.FromString(request.policy.SerializeToString())
            conditional = any(b.HasField("condition") for b in policy.bindings)
            if request.policy.etag and policy.version < self.state.policy.version:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    too_low("Specified", policy.version, self.state.policy.version),
                )
            if conditional and policy.version < CONDITIONAL:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Policy version {policy.version} does not support conditional role "
                    f"bindings: set version {CONDITIONAL}. {VERSIONS_HELP}",
                )
            kept = [
                policy_pb2.Binding.FromString(b.SerializeToString())
                for b in policy.bindings
                if b.members
            ]
            del policy.bindings[:]
            policy.bindings.extend(kept)
            # Stored (and answered) as version 3 only while a condition is left, else 1.
            policy.version = CONDITIONAL if any(b.HasField("condition") for b in kept) else 1
            policy.etag = hashlib.sha256(
                policy.SerializeToString() + secrets.token_bytes(4)
            ).digest()[:8]
            self.state.policy = policy
            return policy_pb2.Policy.FromString(policy.SerializeToString())

    def handlers(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "google.cloud.resourcemanager.v3.Projects",
            {
                "GetIamPolicy": grpc.unary_unary_rpc_method_handler(
                    self.get,
                    request_deserializer=iam_policy_pb2.GetIamPolicyRequest.FromString,
                    response_serializer=policy_pb2.Policy.SerializeToString,
                ),
                "SetIamPolicy": grpc.unary_unary_rpc_method_handler(
                    self.set,
                    request_deserializer=iam_policy_pb2.SetIamPolicyRequest.FromString,
                    response_serializer=policy_pb2.Policy.SerializeToString,
                ),
            },
        )


class GcpServer:
    """Both gRPC services on one free loopback port, in threads of the sandbox daemon."""

    def __init__(self, state: GcpState) -> None:
        self.state = state
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
        self.server.add_generic_rpc_handlers(
            (IamService(state).handlers(), ProjectsService(state).handlers())
        )
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=1)
