"""Anchors outside the database: a rollback of the newest entries, or an older copy of the
ledger put back, is found by comparing the chain with the newest checkpoint each anchor holds.

The S3 anchor runs against moto (a real third-party S3 emulator) with Object Lock on."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from killswitch.anchors import AnchorSettings, S3Anchor, StreamAnchor, build_anchors
from killswitch.ledger import Entry, Ledger
from tests.conftest import run_cli

BUCKET = "ledger-anchors"


def entry(i: int) -> Entry:
    return Entry("r1", "alice", "cli", f"agent-{i}", "deactivate-key", "done", "aws", f"AKIA{i}")


def copy_ledger(src: Path, dst: Path) -> None:
    """What an attacker restores: the database, its WAL and the head file beside it."""
    dst.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", ".head"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy2(f"{src}{suffix}", dst / f"{src.name}{suffix}")


def stream_ledger(tmp_path: Path) -> tuple[Ledger, Path]:
    stream = tmp_path / "siem" / "anchors.jsonl"
    ledger = Ledger(tmp_path / "ledger.db", anchors=[StreamAnchor(stream)])
    return ledger, stream


def test_a_restored_older_copy_of_the_ledger_is_found_by_the_stream_anchor(
    tmp_path: Path,
) -> None:
    ledger, stream = stream_ledger(tmp_path)
    for i in range(3):
        ledger.append(entry(i))
    assert ledger.anchor().ok
    copy_ledger(ledger.path, tmp_path / "old")
    for i in range(3, 6):
        ledger.append(entry(i))
    done = ledger.anchor()
    assert done.ok and done.seq == 6 and done.written == (f"stream {stream}",)
    ledger.close()
    copy_ledger(tmp_path / "old" / "ledger.db", tmp_path)  # the older copy, head file and all
    result = Ledger(tmp_path / "ledger.db", anchors=[StreamAnchor(stream)], create=False).verify()
    assert not result.ok
    assert any(str(stream) in p and "entry 6" in p for p in result.problems), result.problems


def test_a_rewritten_tail_at_the_anchored_sequence_is_found(tmp_path: Path) -> None:
    ledger, stream = stream_ledger(tmp_path)
    for i in range(4):
        ledger.append(entry(i))
    ledger.anchor()
    ledger.close()
    # Same length, different content: the newest entry deleted and another written on top.
    import sqlite3

    with sqlite3.connect(ledger.path) as db:
        db.execute("DELETE FROM entries WHERE seq = 4")
        db.execute("DELETE FROM head")
    (tmp_path / "ledger.db.head").unlink()
    rewriter = Ledger(tmp_path / "ledger.db")
    rewriter.append(Entry("r9", "mallory", "cli", "agent-3", "restore", "done"))
    result = Ledger(tmp_path / "ledger.db", anchors=[StreamAnchor(stream)]).verify()
    assert not result.ok
    assert any("entry 4" in p and "not the one anchored" in p for p in result.problems)


def test_a_forged_anchor_line_is_reported_and_ignored(tmp_path: Path) -> None:
    ledger, stream = stream_ledger(tmp_path)
    ledger.append(entry(0))
    ledger.anchor()
    with stream.open("a") as handle:
        handle.write(json.dumps({"seq": 1, "hash": "f" * 64, "ts": "x", "mac": "0" * 64}) + "\n")
    result = ledger.verify()
    assert not result.ok and any("line 2" in p and "HMAC" in p for p in result.problems)


def test_an_unreadable_anchor_is_said_plainly(tmp_path: Path) -> None:
    stream = tmp_path / "anchors.jsonl"
    stream.mkdir()  # a directory where the stream should be
    ledger = Ledger(tmp_path / "ledger.db", anchors=[StreamAnchor(stream)])
    ledger.append(entry(0))
    result = ledger.verify()
    assert not result.ok and not result.problems
    assert any("unreadable" in u and str(stream) in u for u in result.unchecked)
    profile = tmp_path / "profile.json"
    anchors = {"stream_path": str(stream)}
    profile.write_text(json.dumps({"ledger_path": str(ledger.path), "ledger_anchors": anchors}))
    done = run_cli(tmp_path / "home", "audit", "verify", KILLSWITCH_PROFILE=str(profile))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "unreadable" in done.stdout and "intact" not in done.stdout.replace("chain intact", "")


def test_without_anchors_verify_says_a_rollback_cannot_be_detected(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.append(entry(0))
    done = run_cli(tmp_path / "home", "audit", "verify", "--ledger", str(ledger.path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no external anchor configured" in done.stdout
    assert "cannot be detected" in done.stdout


def test_audit_anchor_then_verify_fails_loudly_when_the_ledger_is_behind(tmp_path: Path) -> None:
    stream = tmp_path / "anchors.jsonl"
    ledger = Ledger(tmp_path / "ledger.db")
    for i in range(3):
        ledger.append(entry(i))
    ledger.close()
    copy_ledger(ledger.path, tmp_path / "old")
    ledger = Ledger(tmp_path / "ledger.db")
    ledger.append(entry(3))
    profile = tmp_path / "profile.json"
    anchors = {"stream_path": str(stream)}
    profile.write_text(json.dumps({"ledger_path": str(ledger.path), "ledger_anchors": anchors}))
    anchored = run_cli(tmp_path / "home", "audit", "anchor", KILLSWITCH_PROFILE=str(profile))
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    assert "entry 4" in anchored.stdout
    ledger.close()
    copy_ledger(tmp_path / "old" / "ledger.db", tmp_path)
    done = run_cli(tmp_path / "home", "audit", "verify", "--json", KILLSWITCH_PROFILE=str(profile))
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert not report["ok"] and any(str(stream) in p for p in report["problems"])


def test_no_anchors_configured_means_none_built() -> None:
    assert build_anchors(AnchorSettings()) == []


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    try:
        yield url
    finally:
        server.stop()


def s3_settings(url: str, prefix: str) -> AnchorSettings:
    return AnchorSettings(
        s3_bucket=BUCKET,
        s3_prefix=prefix,
        s3_endpoint_url=url,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",  # type: ignore[arg-type]
        s3_retention_days=1,
    )


def raw_s3(url: str):  # type: ignore[no-untyped-def]
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's
    )


def test_s3_anchors_are_compliance_locked_and_catch_a_rollback(
    tmp_path: Path, moto_s3: str
) -> None:
    anchors = build_anchors(s3_settings(moto_s3, "t1/"))
    assert [type(a) for a in anchors] == [S3Anchor]
    ledger = Ledger(tmp_path / "ledger.db", anchors=anchors)
    for i in range(2):
        ledger.append(entry(i))
    assert ledger.anchor().ok
    ledger.close()
    copy_ledger(ledger.path, tmp_path / "old")
    ledger = Ledger(tmp_path / "ledger.db", anchors=anchors)
    ledger.append(entry(2))
    done = ledger.anchor()
    assert done.ok and done.written == (f"s3://{BUCKET}/t1/",)
    s3 = raw_s3(moto_s3)
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="t1/")["Versions"]
    assert len(versions) == 2
    newest = versions[0]
    head = s3.head_object(Bucket=BUCKET, Key=newest["Key"], VersionId=newest["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(hours=23)
    # What moto enforces: a locked version cannot be deleted...
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=newest["Key"], VersionId=newest["VersionId"])
    # ...and a delete marker (a plain DELETE) does not hide it from verify, which says so.
    s3.delete_object(Bucket=BUCKET, Key=newest["Key"])
    seen = ledger.verify()
    assert any("entry 3 as anchored" in n for n in seen.notes), seen
    assert not seen.ok and all("delete marker" in p for p in seen.problems)
    ledger.close()
    copy_ledger(tmp_path / "old" / "ledger.db", tmp_path)
    result = Ledger(tmp_path / "ledger.db", anchors=anchors, create=False).verify()
    assert not result.ok
    assert any(f"s3://{BUCKET}/t1/" in p and "entry 3" in p for p in result.problems)
    assert any("delete marker" in p for p in result.problems)


def test_an_unreachable_s3_anchor_is_said_plainly(tmp_path: Path) -> None:
    settings = s3_settings("http://127.0.0.1:9", "t2/").model_copy(update={"timeout_s": 1.0})
    ledger = Ledger(tmp_path / "ledger.db", anchors=build_anchors(settings))
    ledger.append(entry(0))
    done = ledger.anchor()
    assert not done.ok and done.failed[0][0] == f"s3://{BUCKET}/t2/"
    result = ledger.verify()
    assert not result.ok and any("unreadable" in u for u in result.unchecked)
