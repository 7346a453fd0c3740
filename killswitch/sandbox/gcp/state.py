"""What the GCP stand-in remembers: service accounts, their keys, the project's IAM policy."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field

from google.cloud import iam_admin_v1 as iam
from google.iam.v1 import policy_pb2
from google.protobuf import timestamp_pb2

PROJECT = "killswitch-sandbox"


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
        self.skewed: set[str] = set()  # accounts whose assertions get the clock-skew answer

    def reset(self) -> None:
        with self.lock:
            self.accounts.clear()
            self.skewed.clear()
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
