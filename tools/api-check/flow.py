"""A customer's whole journey through the RainLogs API, using only the client that
openapi-python-client generated from openapi/rainlogs.json, then an independent check of what
the API served, written from docs/FORMAT.md alone (no RainLogs code).

    python flow.py --base-url URL --zone-id ZONE --cf-token TOKEN [--timeout SECONDS]

The generated package `rainlogs_client` must be importable (PYTHONPATH). Steps:

 1. register a customer (POST /customers) and keep its first admin key;
 2. add a Cloudflare zone with a token (POST /api/v1/zones);
 3. poll the job list until an archive job of that zone is covered by a signed checkpoint;
 4. download it (NDJSON and zstd) and check the body against the digest headers and the job;
 5. fetch the job with its inclusion proof, the zone checkpoint and the verifier key, and verify
    entry (FORMAT.md §4), object key (§2), hash chain from genesis (§5), inclusion proof and
    Merkle root (§6), key text (§8.3) and the checkpoint's signed note (§8.1, §8.2);
 6. make sure the same checks reject a changed signature, proof, entry and body.

Every check that fails ends the run with exit code 1 and says which one. On success the last
line is `flow: ok`.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import struct
import sys
import time
import uuid

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rainlogs_client import AuthenticatedClient, Client
from rainlogs_client.api.customers import register_customer
from rainlogs_client.api.logs import download_job, get_job, get_zone_checkpoint, list_jobs
from rainlogs_client.api.system import get_verifier_key
from rainlogs_client.api.zones import create_zone
from rainlogs_client.models import (
    CheckpointView,
    DownloadFormat,
    ErrorBody,
    JobDetail,
    JobKind,
    JobPage,
    NewCustomer,
    NewZone,
    Onboarded,
    VerifierKey,
    ZoneView,
)
from rainlogs_client.types import File, Unset


class CheckFailed(Exception):
    """A check of the flow did not hold."""


def check(condition: bool, what: str) -> None:
    if not condition:
        raise CheckFailed(what)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def expect(response, status: int, model: type, what: str):
    """The parsed body of a response that must have `status` and be a `model`."""
    if response.status_code != status or not isinstance(response.parsed, model):
        detail = (
            response.parsed if isinstance(response.parsed, ErrorBody) else response.content[:500]
        )
        raise CheckFailed(f"{what}: expected {status}, got {int(response.status_code)}: {detail}")
    return response.parsed


# ---------------------------------------------------------------------------------------------
# FORMAT.md §4: entries


KINDS = {1: "archive", 2: "empty", 3: "gap", 4: "prune", 5: "key", 6: "erasure", 7: "late",
         8: "shortfall", 9: "index"}


class Reader:
    """Reads the big-endian fields of an entry (FORMAT.md §1, §4.1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        check(self.at + n <= len(self.data), "entry: a field runs past the end")
        part = self.data[self.at : self.at + n]
        self.at += n
        return part

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def u64(self) -> int:
        return struct.unpack(">Q", self.take(8))[0]

    def hash(self) -> bytes:
        return self.take(32)

    def text(self) -> str:
        (length,) = struct.unpack(">H", self.take(2))
        return self.take(length).decode("utf-8")


def decode_entry(data: bytes) -> dict:
    """FORMAT.md §4.1: the 25 fields, in order, nothing after them."""
    check(len(data) <= 65535, "entry: longer than 65535 bytes")
    r = Reader(data)
    e = {}
    e["magic"] = r.take(4)
    e["version"] = r.u8()
    e["kind"] = r.u8()
    e["index"] = r.u64()
    e["origin"] = r.text()
    e["dataset"] = r.text()
    e["window_start_ns"] = r.u64()
    e["window_end_ns"] = r.u64()
    e["method"] = r.u8()
    e["sampling"] = r.u32()
    e["object_key"] = r.text()
    e["object_version"] = r.text()
    e["stored_size"] = r.u64()
    e["stored_sha256"] = r.hash()
    e["content_sha256"] = r.hash()
    e["record_count"] = r.u64()
    e["retain_until_ns"] = r.u64()
    e["gap_reason"] = r.u8()
    e["prune_target_index"] = r.u64()
    e["prune_target_entry_id"] = r.hash()
    e["prune_policy"] = r.text()
    e["pruned_at_ns"] = r.u64()
    e["key"] = r.text()
    e["prev_chain_hash"] = r.hash()
    e["sealed_at_ns"] = r.u64()
    check(r.at == len(data), "entry: bytes after field 25")
    check(e["magic"] == b"RLEN", "entry: magic is not RLEN")
    check(e["version"] == 1, "entry: version is not 1")
    check(e["kind"] in KINDS, f"entry: unknown kind {e['kind']}")
    check(e["sealed_at_ns"] >= 1, "entry: sealed_at_ns is zero")
    return e


def check_archive_entry(e: dict) -> None:
    """FORMAT.md §4.2, the `archive` column."""
    check(e["kind"] == 1, "entry: not an archive entry")
    check(e["window_start_ns"] < e["window_end_ns"], "entry: window start is not before its end")
    check(1 <= e["method"] <= 4, "entry: method out of range")
    check(e["sampling"] != 0, "entry: archive sampling is zero")
    check(1 <= len(e["object_key"].encode()) <= 1024, "entry: object key length")
    check(e["stored_size"] >= 1 and e["record_count"] >= 1, "entry: empty archive")
    check(e["retain_until_ns"] >= 1, "entry: archive without retain-until")
    zero = bytes(32)
    check(
        e["gap_reason"] == 0
        and e["prune_target_index"] == 0
        and e["prune_target_entry_id"] == zero
        and e["prune_policy"] == ""
        and e["pruned_at_ns"] == 0
        and e["key"] == "",
        "entry: a field an archive leaves zero is set",
    )


# ---------------------------------------------------------------------------------------------
# FORMAT.md §2: object keys


def window_time(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    at = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    text = at.strftime("%Y%m%dT%H%M%S")
    if fraction:
        text += f".{fraction:09d}"
    return text + "Z"


def expected_object_key_suffix(e: dict, tenant: str, zone: str) -> str:
    """`<tenant>/<zone>/<dataset>/YYYY/MM/DD/HH/<window>-<id>.ndjson.zst` (the prefix may differ)."""
    start, end = e["window_start_ns"], e["window_end_ns"]
    hour = datetime.datetime.fromtimestamp(start // 1_000_000_000, tz=datetime.timezone.utc)
    object_id = sha256(
        b"rainlogs object id v1\n"
        + e["origin"].encode()
        + b"\n"
        + e["dataset"].encode()
        + b"\n"
        + struct.pack(">QQ", start, end)
        + e["content_sha256"]
    )[:8].hex()
    return (
        f"{tenant}/{zone}/{e['dataset']}/{hour:%Y/%m/%d/%H}/"
        f"{window_time(start)}_{window_time(end)}-{object_id}.ndjson.zst"
    )


# ---------------------------------------------------------------------------------------------
# FORMAT.md §5: the hash chain


def genesis(origin: str) -> bytes:
    return sha256(b"rainlogs chain v1\n" + origin.encode())


def chain_hash(prev: bytes, object_sha256: bytes, entry_id: bytes) -> bytes:
    return sha256(prev + object_sha256 + entry_id)


# ---------------------------------------------------------------------------------------------
# FORMAT.md §6: the Merkle log (RFC 6962 / RFC 9162)


def leaf_hash(entry: bytes) -> bytes:
    return sha256(b"\x00" + entry)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH over leaf hashes: the split point is the largest power of two below n."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2: the root an audit path leads to, or CheckFailed."""
    check(index < size, "proof: leaf index is not below the tree size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        check(sn != 0, "proof: longer than the tree allows")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    check(sn == 0, "proof: shorter than the tree needs")
    return r


# ---------------------------------------------------------------------------------------------
# FORMAT.md §8: keys and signed checkpoints


def parse_verifier_key(text: str) -> tuple[str, int, Ed25519PublicKey]:
    """§8.3: `<name>+<key id, 8 hex>+<base64(0x01 ∥ 32-byte public key)>`, id checked."""
    # The name has no `+`; the base64 key may (standard alphabet), so split twice from the left.
    parts = text.split("+", 2)
    check(len(parts) == 3, "verifier key: not name+id+key")
    name, key_id_hex, encoded = parts
    check(
        0 < len(name.encode()) <= 128 and not any(c.isspace() for c in name),
        "verifier key: bad name",
    )
    check(len(key_id_hex) == 8 and key_id_hex == key_id_hex.lower(), "verifier key: bad key id")
    raw = base64.b64decode(encoded, validate=True)
    check(len(raw) == 33 and raw[0] == 0x01, "verifier key: not an Ed25519 key")
    key_id = int(key_id_hex, 16)
    computed = int.from_bytes(sha256(name.encode() + b"\n" + raw)[:4], "big")
    check(computed == key_id, "verifier key: key id does not match name and key")
    return name, key_id, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note: bytes, pinned: tuple[str, int, Ed25519PublicKey]) -> tuple[str, int, bytes]:
    """§8.2 then §8.1: verify the signed note with the pinned key; (origin, size, root)."""
    text = note.decode("utf-8")
    check(all(c == "\n" or c >= " " for c in text), "note: control characters")
    check(not any("\x7f" <= c <= "\x9f" for c in text), "note: control characters")
    split = text.find("\n\n")
    check(split >= 0, "note: no blank line before the signatures")
    body = text[: split + 1]
    signatures = text[split + 2 :]
    check(signatures.endswith("\n") and signatures != "\n", "note: no signature lines")
    name, key_id, public_key = pinned
    signed_by_pinned = False
    for line in signatures[:-1].split("\n"):
        check(line.startswith("\u2014 "), f"note: not a signature line: {line!r}")
        fields = line[2:].split(" ")
        check(len(fields) == 2, f"note: not a signature line: {line!r}")
        signer, blob = fields
        raw = base64.b64decode(blob, validate=True)
        check(len(raw) == 4 + 64, "note: signature is not key id + Ed25519 signature")
        if signer != name or int.from_bytes(raw[:4], "big") != key_id:
            continue  # not the pinned key: ignored
        try:
            public_key.verify(raw[4:], body.encode("utf-8"))
        except InvalidSignature as e:
            raise CheckFailed("note: the pinned key's signature does not verify") from e
        signed_by_pinned = True
    check(signed_by_pinned, "note: not signed by the pinned key")
    lines = body.split("\n")
    check(len(lines) == 4 and lines[3] == "", "note: body is not origin, size, root")
    origin, size_text, root_b64 = lines[:3]
    check(size_text.isdigit() and (size_text == "0" or not size_text.startswith("0")), "note: size")
    root = base64.b64decode(root_b64, validate=True)
    check(len(root) == 32, "note: root hash is not 32 bytes")
    return origin, int(size_text), root


def must_fail(what: str, action) -> None:
    """Negative control: `action` must raise CheckFailed, or the check it exercises is void."""
    try:
        action()
    except CheckFailed:
        return
    raise CheckFailed(f"negative control: {what} was accepted")


def flip_bit(data: bytes, at: int) -> bytes:
    changed = bytearray(data)
    changed[at] ^= 0x01
    return bytes(changed)


def change_signature(note: bytes) -> bytes:
    """The note with one bit of its (last) signature changed, the key id left alone."""
    head, _, line = note.rstrip(b"\n").rpartition(b"\n")
    prefix, _, blob = line.rpartition(b" ")
    raw = base64.b64decode(blob)
    forged = base64.b64encode(raw[:4] + flip_bit(raw[4:], 0))
    return head + b"\n" + prefix + b" " + forged + b"\n"


def change_root(note: bytes) -> bytes:
    """The note with one bit of the root hash in its body changed, the signature left alone."""
    lines = note.split(b"\n")
    lines[2] = base64.b64encode(flip_bit(base64.b64decode(lines[2]), 0))
    return b"\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The flow


def all_jobs(client: AuthenticatedClient, zone_id: str) -> list:
    """Every job of the zone, following `next_cursor`."""
    jobs, cursor = [], None
    while True:
        kwargs = {"client": client, "zone_id": zone_id, "limit": 1000}
        if cursor:
            kwargs["cursor"] = cursor
        page = expect(list_jobs.sync_detailed(**kwargs), 200, JobPage, "list jobs")
        jobs.extend(page.jobs)
        if not isinstance(page.next_cursor, str):
            return jobs
        cursor = page.next_cursor


def listed_log(client: AuthenticatedClient, zone_id: str, size: int, timeout: float = 60.0) -> list:
    """The zone's jobs by leaf index once the list covers `size` entries (the job list is a
    projection of the log and may trail the checkpoint by a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = sorted(all_jobs(client, zone_id), key=lambda j: j.leaf_index)
        check(
            [j.leaf_index for j in jobs] == list(range(len(jobs))), "log: leaf indexes have holes"
        )
        if len(jobs) >= size:
            return jobs
        check(time.monotonic() < deadline, f"log: {len(jobs)} jobs listed, checkpoint says {size}")
        time.sleep(1)


def wait_for_provable_archive(
    client: AuthenticatedClient, zone_id: str, min_tree_size: int, timeout: float
):
    """An archive job of the zone with its inclusion proof, once a signed checkpoint of at least
    `min_tree_size` entries covers it (so the audit path has hashes to check)."""
    deadline = time.monotonic() + timeout
    last = "no archive job yet"
    while time.monotonic() < deadline:
        page = expect(
            list_jobs.sync_detailed(client=client, zone_id=zone_id, kind=JobKind.ARCHIVE, limit=10),
            200,
            JobPage,
            "list archive jobs",
        )
        for job in page.jobs:  # newest first: the leaf at the right edge of the tree
            detail = expect(
                get_job.sync_detailed(job.job_id, client=client, proof=True),
                200,
                JobDetail,
                "get job with proof",
            )
            if isinstance(detail.proof, Unset):
                last = f"job {job.job_id}: {detail.proof_unavailable}"
            elif detail.proof.tree_size < min_tree_size or not detail.proof.audit_path:
                last = f"job {job.job_id}: proof in a tree of {detail.proof.tree_size}"
            else:
                return detail
        time.sleep(2)
    raise CheckFailed(f"no archive job with a proof within {timeout:.0f}s ({last})")


def run(args: argparse.Namespace) -> None:
    public = Client(base_url=args.base_url, timeout=60.0)

    # 1. Register.
    email = f"flow-{uuid.uuid4().hex[:12]}@acme.example"
    onboarded = expect(
        register_customer.sync_detailed(
            client=public, body=NewCustomer(name="Flow Test GmbH", email=email)
        ),
        201,
        Onboarded,
        "register customer",
    )
    tenant = onboarded.customer.id
    check(onboarded.customer.email == email, "register: the customer's email")
    check(onboarded.api_key.key.startswith("rl_"), "register: the API key form")
    check(onboarded.api_key.role.value == "admin", "register: the first key is admin")
    print(f"customer: {tenant} registered, admin key {onboarded.api_key.key_id}")
    client = AuthenticatedClient(base_url=args.base_url, token=onboarded.api_key.key, timeout=60.0)

    # 2. Add the zone.
    zone = expect(
        create_zone.sync_detailed(
            client=client, body=NewZone(zone_id=args.zone_id, cf_api_token=args.cf_token)
        ),
        201,
        ZoneView,
        "add zone",
    )
    check(zone.zone_id == args.zone_id, "add zone: the zone id")
    print(f"zone: {zone.zone_id} added ({zone.name}, {zone.plan}, {zone.method.value})")

    # 3. Wait for a sealed archive that a signed checkpoint covers.
    detail = wait_for_provable_archive(client, args.zone_id, args.min_tree_size, args.timeout)
    job, proof = detail.job, detail.proof
    check(job.kind == "archive" and job.zone_id == args.zone_id, "job: an archive of the zone")
    print(f"job: {job.job_id} leaf {job.leaf_index}, {job.record_count} records, {job.dataset}")

    # 4. Download both forms and check them against their headers and the job.
    ndjson = download_job.sync_detailed(job.job_id, client=client)
    body = expect(ndjson, 200, File, "download ndjson").payload.read()
    digest = sha256(body)
    check(ndjson.headers.get("x-content-sha256") == digest.hex(), "download: X-Content-SHA256")
    check(digest.hex() == job.content_sha256, "download: body is not the job's content")
    check(
        ndjson.headers.get("repr-digest") == f"sha-256=:{base64.b64encode(digest).decode()}:",
        "download: Repr-Digest",
    )
    check(ndjson.headers.get("content-type", "").startswith("application/x-ndjson"), "ndjson type")
    records = sum(1 for line in body.split(b"\n") if line)
    check(records == job.record_count, f"download: {records} records, job says {job.record_count}")
    zst = download_job.sync_detailed(job.job_id, client=client, format_=DownloadFormat.ZST)
    stored = expect(zst, 200, File, "download zst").payload.read()
    check(zst.headers.get("x-object-sha256") == sha256(stored).hex(), "download: X-Object-SHA256")
    check(sha256(stored).hex() == job.stored_sha256, "download: zst is not the stored object")
    check(len(stored) == job.stored_size, "download: stored size")
    check(stored[:4] == b"\x28\xb5\x2f\xfd", "download: the stored object is not zstd frames")
    print(f"download: {len(body)} bytes ndjson, {len(stored)} bytes zst, digests match the job")

    # 5a. The entry (FORMAT.md §4) and its object key (§2).
    check(isinstance(job.entry, str), "job: no entry bytes in the single-job answer")
    entry = base64.b64decode(job.entry, validate=True)
    entry_id = sha256(entry)
    check(entry_id.hex() == job.job_id, "entry: the job id is not SHA-256 of the entry (§4.5)")
    e = decode_entry(entry)
    check_archive_entry(e)
    origin = f"rainlogs/{tenant}/{args.zone_id}"
    check(e["origin"] == origin, f"entry: origin {e['origin']!r}, expected {origin!r}")
    check(e["index"] == job.leaf_index, "entry: index is not the leaf index")
    check(e["stored_sha256"].hex() == job.stored_sha256, "entry: stored_sha256")
    check(e["content_sha256"] == digest, "entry: content_sha256 is not the downloaded body's")
    check(e["stored_size"] == len(stored), "entry: stored_size")
    check(e["record_count"] == records, "entry: record_count")
    check(e["object_key"] == job.object_key, "entry: object key is not the job's")
    check(e["dataset"] == job.dataset, "entry: dataset")
    suffix = expected_object_key_suffix(e, tenant, args.zone_id)
    check(
        e["object_key"] == suffix or e["object_key"].endswith("/" + suffix),
        f"object key: {e['object_key']!r} does not end with {suffix!r} (§2)",
    )
    check(e["prev_chain_hash"].hex() == job.prev_chain_hash, "entry: prev_chain_hash")
    check(
        chain_hash(e["prev_chain_hash"], e["stored_sha256"], entry_id).hex() == job.chain_hash,
        "chain: the job's chain hash is not SHA-256(prev ∥ stored ∥ entry id) (§5)",
    )
    check(leaf_hash(entry).hex() == job.leaf_hash == proof.leaf_hash, "entry: leaf hash (§6)")
    print(f"entry: {len(entry)} bytes decode as an archive entry of {origin}; object key matches")

    # 5b. The key to pin and the checkpoints it signed.
    key = expect(get_verifier_key.sync_detailed(client=public), 200, VerifierKey, "verifier key")
    pinned = parse_verifier_key(key.verifier_key)
    check(pinned[0] == key.key_name and f"{pinned[1]:08x}" == key.key_id, "verifier key fields")
    view = expect(
        get_zone_checkpoint.sync_detailed(args.zone_id, client=client),
        200,
        CheckpointView,
        "zone checkpoint",
    )
    check(view.verifier_key == key.verifier_key, "checkpoint: verified with another key")
    cp_origin, cp_size, cp_root = open_note(view.note.encode(), pinned)
    check(cp_origin == origin == view.origin, "checkpoint: origin (§8.1)")
    check(cp_size == view.tree_size and cp_root.hex() == view.root_hash, "checkpoint: fields")
    print(f"checkpoint: {origin} size {cp_size} signed by {pinned[0]}: signature ok")

    # 5c. The inclusion proof, against the checkpoint it names.
    p_origin, p_size, p_root = open_note(proof.checkpoint.note.encode(), pinned)
    check(p_origin == origin, "proof checkpoint: origin")
    check(p_size == proof.tree_size == proof.checkpoint.tree_size, "proof: tree size")
    check(p_root.hex() == proof.checkpoint.root_hash, "proof checkpoint: root")
    check(proof.leaf_index == job.leaf_index, "proof: leaf index")
    path = [bytes.fromhex(h) for h in proof.audit_path]
    check(all(len(h) == 32 for h in path), "proof: hashes are not 32 bytes")
    root = root_from_inclusion_proof(job.leaf_index, p_size, leaf_hash(entry), path)
    check(root == p_root, "proof: the audit path does not lead to the signed root (§6)")
    print(f"proof: leaf {job.leaf_index} in tree {p_size}, {len(path)} hashes: ok")

    # 5d. The whole log as listed: chain from genesis and the signed root from the leaf hashes.
    jobs = listed_log(client, args.zone_id, cp_size)
    previous = genesis(origin)
    for j in jobs:
        check(j.prev_chain_hash == previous.hex(), f"chain: break before leaf {j.leaf_index}")
        # §5: archive, late and index entries link the SHA-256 of the object they hold.
        object_sha = (bytes.fromhex(j.stored_sha256) if j.kind in ("archive", "late", "index")
                      else bytes(32))
        previous = chain_hash(previous, object_sha, bytes.fromhex(j.job_id))
        check(previous.hex() == j.chain_hash, f"chain: leaf {j.leaf_index} (§5)")
    leaves = [bytes.fromhex(j.leaf_hash) for j in jobs]
    check(merkle_root(leaves[:cp_size]) == cp_root, "log: leaves do not give the signed root")
    check(merkle_root(leaves[:p_size]) == p_root, "log: leaves do not give the proof's root")
    print(f"log: {len(jobs)} entries chain from genesis; the first {cp_size} give the signed root")

    # 6. Negative controls: the same checks reject a one-bit change of what they check.
    note = view.note.encode()
    must_fail("a changed signature", lambda: open_note(change_signature(note), pinned))
    must_fail("a changed root", lambda: open_note(change_root(note), pinned))
    must_fail(
        "a changed entry",
        lambda: check(
            root_from_inclusion_proof(
                job.leaf_index, p_size, leaf_hash(flip_bit(entry, len(entry) // 2)), path
            )
            == p_root,
            "changed entry",
        ),
    )
    changed_path = [flip_bit(path[0], 0)] + path[1:]
    must_fail(
        "a changed audit path",
        lambda: check(
            root_from_inclusion_proof(job.leaf_index, p_size, leaf_hash(entry), changed_path)
            == p_root,
            "changed path",
        ),
    )
    must_fail("a truncated entry", lambda: decode_entry(entry[:-1]))
    must_fail(
        "a proof one hash short",
        lambda: root_from_inclusion_proof(job.leaf_index, p_size, leaf_hash(entry), path[:-1]),
    )
    must_fail(
        "a changed body",
        lambda: check(sha256(flip_bit(body, 0)).hex() == job.content_sha256, "changed body"),
    )
    print("negative controls: a changed signature, root, entry, path or body is rejected")
    print("flow: ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--zone-id", required=True)
    parser.add_argument("--cf-token", required=True)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--min-tree-size", type=int, default=5)
    args = parser.parse_args()
    try:
        run(args)
    except CheckFailed as failure:
        print(f"flow: FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
