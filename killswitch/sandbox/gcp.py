"""GCP stand-in: a gRPC server registering `google.iam.admin.v1.IAM` (service accounts and
their keys) and `google.cloud.resourcemanager.v3.Projects` (the project's IAM policy), with
the request and response types that ship in google-cloud-iam and
google-cloud-resource-manager; and the OAuth2 token endpoint (served by the SaaS app at
`/gcp/token`) that checks a key's RS256 JWT assertion against its public key.

Errors as Google's: gRPC NOT_FOUND with "… does not exist.", ABORTED on a stale policy etag,
and `invalid_grant` from the token endpoint for a disabled or deleted key or account.
Weaker than GCP: no caller authentication on the gRPC side (anyone on loopback may call it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from google.cloud import iam_admin_v1 as iam
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.protobuf import empty_pb2, timestamp_pb2

PROJECT = "killswitch-sandbox"
T = TypeVar("T")


@dataclass
class Key:
    id: str
    public_pem: bytes
    created: float
    disabled: bool = False


@dataclass
class Account:
    email: str
    unique_id: str
    display_name: str
    description: str
    disabled: bool = False
    keys: dict[str, Key] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"projects/{PROJECT}/serviceAccounts/{self.email}"

    def message(self) -> iam.ServiceAccount:
        return iam.ServiceAccount(
            name=self.name,
            project_id=PROJECT,
            unique_id=self.unique_id,
            email=self.email,
            display_name=self.display_name,
            description=self.description,
            oauth2_client_id=self.unique_id,
            disabled=self.disabled,
            etag=hashlib.sha256(f"{self.email}{self.disabled}".encode()).digest()[:8],
        )

    def key_message(self, key: Key, private: bytes = b"") -> iam.ServiceAccountKey:
        created = timestamp_pb2.Timestamp(seconds=int(key.created))
        return iam.ServiceAccountKey(
            name=f"{self.name}/keys/{key.id}",
            private_key_type=iam.ServiceAccountPrivateKeyType.TYPE_GOOGLE_CREDENTIALS_FILE
            if private
            else iam.ServiceAccountPrivateKeyType.TYPE_UNSPECIFIED,
            key_algorithm=iam.ServiceAccountKeyAlgorithm.KEY_ALG_RSA_2048,
            private_key_data=private,
            public_key_data=key.public_pem,
            valid_after_time=created,
            valid_before_time=timestamp_pb2.Timestamp(seconds=253402300799),
            key_origin=iam.ServiceAccountKeyOrigin.GOOGLE_PROVIDED,
            key_type=iam.ListServiceAccountKeysRequest.KeyType.USER_MANAGED,
            disabled=key.disabled,
        )


class GcpState:
    """Service accounts, keys and the project's IAM policy, behind one lock."""

    def __init__(self, token_uri: str = "") -> None:
        self.lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.policy = policy_pb2.Policy(version=1, etag=b"\x00")
        self.token_uri = token_uri

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.policy = policy_pb2.Policy(version=1, etag=b"\x00")

    def account(self, name: str) -> Account:
        """`projects/{p|-}/serviceAccounts/{email or unique id}`; NOT_FOUND otherwise."""
        ident = name.rsplit("/", 1)[-1]
        for account in self.accounts.values():
            if ident in (account.email, account.unique_id):
                return account
        raise LookupError(f"Service account {name} does not exist.")

    def key(self, name: str) -> tuple[Account, Key]:
        account_name, _, key_id = name.partition("/keys/")
        try:
            account = self.account(account_name)
        except LookupError:
            raise LookupError(f"Service account key {name} does not exist.") from None
        key = account.keys.get(key_id)
        if key is None:
            raise LookupError(f"Service account key {name} does not exist.")
        return account, key

    def by_key_id(self, key_id: str) -> tuple[Account, Key] | None:
        with self.lock:
            for account in self.accounts.values():
                if key_id in account.keys:
                    return account, account.keys[key_id]
        return None


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


class ProjectsService:
    """`google.cloud.resourcemanager.v3.Projects` GetIamPolicy / SetIamPolicy for the one
    sandbox project, with etag concurrency control (a stale etag → ABORTED)."""

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
        self._project(request.resource, context)
        with self.state.lock:
            return policy_pb2.Policy.FromString(self.state.policy.SerializeToString())

    def set(
        self, request: iam_policy_pb2.SetIamPolicyRequest, context: grpc.ServicerContext
    ) -> policy_pb2.Policy:
        self._project(request.resource, context)
        with self.state.lock:
            if request.policy.etag and request.policy.etag != self.state.policy.etag:
                context.abort(
                    grpc.StatusCode.ABORTED,
                    "There were concurrent policy changes. Please retry the whole "
                    "read-modify-write with exponential backoff.",
                )
            policy = policy_pb2.Policy.FromString(request.policy.SerializeToString())
            kept = [
                policy_pb2.Binding.FromString(b.SerializeToString())
                for b in policy.bindings
                if b.members
            ]
            del policy.bindings[:]
            policy.bindings.extend(kept)
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


def _b64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def token_exchange(state: GcpState, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST /token (jwt-bearer): check the assertion's RS256 signature with the key's public
    key, then the key's and the account's state; Google's answer shapes."""

    def refused(description: str) -> tuple[int, dict[str, Any]]:
        return 400, {"error": "invalid_grant", "error_description": description}

    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
        return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type: "}
    try:
        head, claims_part, signature = form["assertion"].split(".")
        header = json.loads(_b64(head))
        claims = json.loads(_b64(claims_part))
    except (KeyError, ValueError):
        return refused(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        )
    found = state.by_key_id(str(header.get("kid", "")))
    if found is None:
        return refused("Invalid JWT Signature.")
    account, key = found
    public = serialization.load_pem_public_key(key.public_pem)
    try:
        if not isinstance(public, rsa.RSAPublicKey):
            return refused("Invalid JWT Signature.")
        public.verify(
            _b64(signature), f"{head}.{claims_part}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return refused("Invalid JWT Signature.")
    now = time.time()
    if claims.get("iss") != account.email or not (
        now - 300 <= float(claims.get("exp", 0)) <= now + 3900
    ):
        return refused(
            "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe"
        )
    if key.disabled:
        return refused("Invalid JWT Signature.")
    if account.disabled:
        return refused("Invalid grant: account not found")
    return 200, {
        "access_token": "ya29.sandbox-" + secrets.token_urlsafe(32),
        "expires_in": 3599,
        "token_type": "Bearer",
    }
