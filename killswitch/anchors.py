"""Anchors: checkpoints of the ledger's head kept where a database writer cannot rewrite them.

A hash chain only points backwards, so it cannot see its own tail cut off, nor an older copy
of the whole database put back. A checkpoint (sequence, hash, time; sealed with the ledger's
HMAC key) written outside the database after every run lets `audit verify` see that the
ledger is behind what it once was. Anchors: an append-only JSON-lines stream (what a SIEM
tails), and S3 objects under Object Lock in COMPLIANCE mode (write-once for the retention).
The head file beside the ledger is the same kind of checkpoint, kept locally on every append.
"""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from killswitch.errors import KillSwitchError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A stream line or object larger than this is not one of ours: it is not parsed.
MAX_RECORD = 4096
# Keys sort newest first: the key holds SEQ_CEILING - seq, zero-padded.
SEQ_CEILING = 10**16
# How many of the newest S3 versions verify reads looking for a genuine checkpoint.
S3_SCAN = 50


class AnchorSettings(BaseModel):
    """Where the ledger's head is checkpointed outside its database (none: no anchor)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    stream_path: Path | None = Field(
        None, description="an append-only JSON-lines file of checkpoints (what a SIEM tails)"
    )
    s3_bucket: str | None = Field(
        None, description="an S3 bucket created with Object Lock enabled (COMPLIANCE mode)"
    )
    s3_prefix: str = Field("killswitch/ledger-anchors/", description="key prefix of checkpoints")
    s3_region: str = "us-east-1"
    s3_endpoint_url: str | None = Field(None, description="None means the real S3 endpoint")
    s3_access_key_id: str | None = Field(None, description="None means boto3's default chain")
    s3_secret_access_key: SecretStr | None = None
    s3_session_token: SecretStr | None = None
    s3_retention_days: int = Field(
        400, ge=1, description="COMPLIANCE retention of each checkpoint (longer than an audit)"
    )
    timeout_s: float = Field(
        3.0, gt=0, description="per S3 request; anchoring runs after a run's closing entry"
    )


class AnchorError(KillSwitchError):
    """An anchor could not be read or written."""

    code = "anchor-unreadable"
    remediation = (
        "Check the anchor's path or bucket and the kill switch's permissions on it "
        "(runbooks/audit.md); until it can be read, a rollback of the ledger cannot be ruled out."
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The ledger's head at one moment: its last sequence number and hash, sealed."""

    seq: int
    hash: str
    ts: str
    mac: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def parse(cls, raw: str | bytes) -> Checkpoint | None:
        """A checkpoint from its JSON form; None when it is not one."""
        if len(raw) > MAX_RECORD:
            return None
        try:
            data = json.loads(raw)
            point = cls(int(data["seq"]), str(data["hash"]), str(data["ts"]), str(data["mac"]))
        except (ValueError, TypeError, KeyError):
            return None
        return point if point.seq > 0 else None


@dataclass(frozen=True, slots=True)
class Anchored:
    """What `Ledger.anchor()` did: the checkpointed head, and each anchor's outcome."""

    seq: int
    hash: str
    written: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def judge(name: str, point: Checkpoint, at: str | None, last: int) -> tuple[str, str]:
    """Compare one checkpoint with the chain (`at`: its hash at the checkpoint's sequence):
    a problem (the ledger is behind or differs), else a note of what was confirmed."""
    if at is None:
        return (
            f"{name} says the ledger held entry {point.seq} (checkpoint of {point.ts}); the "
            f"ledger ends at {last}: newest entries removed or an older copy restored",
            "",
        )
    if not hmac.compare_digest(at, point.hash):
        return (
            f"{name}: entry {point.seq} is not the one anchored at {point.ts} (rolled back "
            "and rewritten, or replaced)",
            "",
        )
    return "", f"{name}: entry {point.seq} as anchored at {point.ts}"


def seal_payload(seq: int, digest: str, ts: str) -> bytes:
    """What the ledger's HMAC key signs for a checkpoint (distinct from an entry's payload)."""
    return f"anchor:{seq}:{digest}:{ts}".encode()


Genuine = Callable[[Checkpoint], bool]


class Anchor(Protocol):
    """Somewhere checkpoints are written and the newest genuine one is read back."""

    name: str

    def write(self, point: Checkpoint) -> None:
        """Record one checkpoint; raises AnchorError when it cannot."""
        ...

    def newest(self, genuine: Genuine) -> tuple[Checkpoint | None, list[str]]:
        """The newest checkpoint whose seal holds, and what was found wrong on the way."""
        ...


def private_file(path: Path, flags: int) -> int:
    """Open (creating 0600) a file of the kill switch's state."""
    return os.open(path, flags | os.O_CREAT, 0o600)


def sync_to_disk(path: Path) -> None:
    """fsync a file if it exists (what a checkpoint vouches for must outlive a power loss)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HeadFile:
    """The last checkpoint, beside the ledger (same trust as the database; cheap, local).

    Rewritten in place with one fixed-size write at offset 0 from a descriptor kept open:
    a few microseconds per append, where a temporary file and a rename cost half a
    millisecond. Several writers may race; the file then lags the ledger, never leads it."""

    SIZE = 512

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"head file {path}"
        self._fd: int | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, point: Checkpoint) -> None:
        """Overwrite the head file with `point`."""
        record = point.to_json().encode().ljust(self.SIZE)
        try:
            if self._fd is None:
                self._fd = private_file(self.path, os.O_RDWR)
            os.pwrite(self._fd, record, 0)
        except OSError as exc:
            raise AnchorError(f"{self.name}: cannot write: {exc.strerror}") from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def newest(self, genuine: Genuine) -> tuple[Checkpoint | None, list[str]]:
        """The checkpoint in the file; a missing file holds none."""
        for _ in range(3):  # a read can meet another process's write half-way: read again
            try:
                raw = self.path.read_bytes()[: MAX_RECORD + 1]
            except FileNotFoundError:
                return None, []
            except OSError as exc:
                raise AnchorError(f"{self.name}: cannot read: {exc.strerror}") from exc
            point = Checkpoint.parse(raw)
            if point is not None and genuine(point):
                return point, []
            time.sleep(0.01)
        return None, ["does not match its HMAC (altered, or written with another key)"]


class StreamAnchor:
    """An append-only JSON-lines file, one checkpoint a line (ship it to the SIEM)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"stream {path}"

    def write(self, point: Checkpoint) -> None:
        """Append one line and fsync it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = private_file(self.path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(fd, (point.to_json() + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise AnchorError(f"{self.name}: cannot append: {exc.strerror}") from exc

    def newest(self, genuine: Genuine) -> tuple[Checkpoint | None, list[str]]:
        """The genuine line with the highest sequence number; forged lines are reported."""
        best: Checkpoint | None = None
        problems: list[str] = []
        try:
            with self.path.open("rb") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip() or not line.endswith(b"\n"):
                        continue  # blank, or a line another process is still appending
                    point = Checkpoint.parse(line)
                    if point is None or not genuine(point):
                        problems.append(f"line {number} does not match its HMAC (forged?)")
                    elif best is None or point.seq >= best.seq:
                        best = point
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            raise AnchorError(f"{self.name}: cannot read: {exc.strerror or exc}") from exc
        return best, problems


class S3Anchor:
    """Each checkpoint a new object under Object Lock COMPLIANCE with a retain-until date."""

    def __init__(self, settings: AnchorSettings) -> None:
        self.settings = settings
        self.bucket = settings.s3_bucket or ""
        self.prefix = settings.s3_prefix
        self.name = f"s3://{self.bucket}/{self.prefix}"
        self._client: S3Client | None = None

    def _s3(self) -> S3Client:
        # Created on first use: building a boto3 client costs tens of milliseconds.
        if self._client is None:
            import boto3
            from botocore.config import Config

            s = self.settings
            self._client = boto3.client(
                "s3",
                region_name=s.s3_region,
                endpoint_url=s.s3_endpoint_url,
                aws_access_key_id=s.s3_access_key_id,
                aws_secret_access_key=(
                    s.s3_secret_access_key.get_secret_value() if s.s3_secret_access_key else None
                ),
                aws_session_token=(
                    s.s3_session_token.get_secret_value() if s.s3_session_token else None
                ),
                config=Config(
                    connect_timeout=s.timeout_s,
                    read_timeout=s.timeout_s,
                    retries={"max_attempts": 2, "mode": "standard"},  # one retry, bounded,
                ),
            )
        return self._client

    def key_of(self, point: Checkpoint) -> str:
        stamp = "".join(c for c in point.ts if c.isdigit())
        return f"{self.prefix}{SEQ_CEILING - point.seq:016d}-{point.seq}-{stamp}.json"

    def write(self, point: Checkpoint) -> None:
        """PutObject with ObjectLockMode=COMPLIANCE and a retain-until date (S3 PutObject)."""
        from datetime import UTC, datetime, timedelta

        until = datetime.now(UTC) + timedelta(days=self.settings.s3_retention_days)
        try:
            self._s3().put_object(
                Bucket=self.bucket,
                Key=self.key_of(point),
                Body=point.to_json().encode(),
                ContentType="application/json",
                ChecksumAlgorithm="SHA256",
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=until,
            )
        except Exception as exc:  # botocore's errors have no common base worth naming
            raise AnchorError(f"{self.name}: cannot write: {_reason(exc)}") from exc

    def newest(self, genuine: Genuine) -> tuple[Checkpoint | None, list[str]]:
        """The newest genuine version under the prefix (S3 ListObjectVersions, GetObject);
        versions hidden by a delete marker still count, and the marker is reported."""
        problems: list[str] = []
        try:
            listed = self._s3().list_object_versions(
                Bucket=self.bucket, Prefix=self.prefix, MaxKeys=S3_SCAN
            )
            for marker in listed.get("DeleteMarkers", []):
                problems.append(f"a delete marker hides {marker.get('Key', '?')} (deletion tried)")
            versions = sorted(
                listed.get("Versions", []),
                key=lambda v: (v.get("Key", ""), not v.get("IsLatest", False)),
            )
            for version in versions:
                got = self._s3().get_object(
                    Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                )
                point = Checkpoint.parse(got["Body"].read(MAX_RECORD + 1))
                if point is not None and genuine(point):
                    if got.get("ObjectLockMode") != "COMPLIANCE":
                        problems.append(f"{version['Key']} is not under a COMPLIANCE lock")
                    return point, problems
                problems.append(f"{version['Key']} does not match its HMAC (forged?)")
        except Exception as exc:
            raise AnchorError(f"{self.name}: cannot read: {_reason(exc)}") from exc
        return None, problems


def _reason(exc: Exception) -> str:
    """A provider error's code and message, without request details."""
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def build_anchors(settings: AnchorSettings) -> list[Anchor]:
    """The configured external anchors, in the order verify reads them."""
    anchors: list[Anchor] = []
    if settings.stream_path is not None:
        anchors.append(StreamAnchor(settings.stream_path))
    if settings.s3_bucket:
        anchors.append(S3Anchor(settings))
    return anchors
