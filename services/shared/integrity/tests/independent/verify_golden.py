"""An auditor's re-implementation of docs/FORMAT.md, written from the document alone.

It re-derives every hash in the golden files from the entry bytes, using only the Python
standard library, and exits non-zero on the first disagreement. Signatures are not checked here
(the standard library has no Ed25519); the key id is.
"""
import base64
import hashlib
import re
import struct
import sys
from pathlib import Path

GOLDEN = Path(sys.argv[1])


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def fail(msg):
    print("MISMATCH:", msg)
    sys.exit(1)


def parse_entry(b):
    """Decodes the fields of FORMAT.md §4.1 in order."""
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            fail("entry truncated")
        out = b[pos:pos + n]
        pos += n
        return out

    def u(n):
        return int.from_bytes(take(n), "big")

    def text():
        return take(u(2)).decode("utf-8")

    if take(4) != b"RLEN" or u(1) != 1:
        fail("magic/version")
    e = {}
    e["kind"] = u(1)
    e["index"] = u(8)
    e["origin"] = text()
    e["dataset"] = text()
    e["window_start_ns"] = u(8)
    e["window_end_ns"] = u(8)
    e["method"] = u(1)
    e["sampling"] = u(4)
    e["object_key"] = text()
    e["object_version"] = text()
    e["stored_size"] = u(8)
    e["stored_sha256"] = take(32)
    e["content_sha256"] = take(32)
    e["record_count"] = u(8)
    e["retain_until_ns"] = u(8)
    e["gap_reason"] = u(1)
    e["prune_target_index"] = u(8)
    e["prune_target_entry_id"] = take(32)
    e["prune_policy"] = text()
    e["pruned_at_ns"] = u(8)
    e["key"] = text()
    e["prev_chain_hash"] = take(32)
    e["sealed_at_ns"] = u(8)
    if pos != len(b):
        fail("trailing bytes")
    return e


def mth(leaves):
    """RFC 6962 Merkle tree hash over leaf data (FORMAT.md §6)."""
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00", leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return sha256(b"\x01", mth(leaves[:k]), mth(leaves[k:]))


# --- entries and ids (§4.5) ---
entries_text = (GOLDEN / "entries.txt").read_text()
blocks = re.findall(r"entry (\d+) \((\w+)\), (\d+) bytes\nentry id: ([0-9a-f]{64})\n((?:  [0-9a-f]+\n)+)", entries_text)
if len(blocks) != 6:
    fail("expected 6 entries in entries.txt")
raw = []
parsed = []
for index, kind, length, entry_id, hex_lines in blocks:
    b = bytes.fromhex("".join(hex_lines.split()))
    if len(b) != int(length):
        fail(f"entry {index} length")
    if sha256(b).hex() != entry_id:
        fail(f"entry {index} id")
    e = parse_entry(b)
    kinds = {1: "archive", 2: "empty", 3: "gap", 4: "prune", 5: "key"}
    if kinds[e["kind"]] != kind or e["index"] != int(index):
        fail(f"entry {index} kind/index")
    raw.append(b)
    parsed.append(e)

# --- chain (§5) ---
origin = parsed[0]["origin"]
chain_text = (GOLDEN / "chain.txt").read_text()
head = sha256(b"rainlogs chain v1\n", origin.encode())
if head.hex() not in chain_text.splitlines()[1]:
    fail("genesis")
expected_chain = re.findall(r"chain hash: ([0-9a-f]{64})", chain_text)
for i, (b, e) in enumerate(zip(raw, parsed)):
    if e["origin"] != origin or e["prev_chain_hash"] != head:
        fail(f"chain link {i}")
    obj = e["stored_sha256"] if e["kind"] == 1 else bytes(32)
    head = sha256(head, obj, sha256(b))
    if head.hex() != expected_chain[i]:
        fail(f"chain hash {i}")

# --- prune rule (§9.6) ---
prune = parsed[5]
target = parsed[prune["prune_target_index"]]
if (prune["prune_target_entry_id"] != sha256(raw[prune["prune_target_index"]])
        or prune["object_key"] != target["object_key"]
        or prune["pruned_at_ns"] < target["retain_until_ns"]):
    fail("prune does not match its target")

# --- Merkle roots (§6) ---
merkle_text = (GOLDEN / "merkle.txt").read_text()
roots = dict(re.findall(r"size (\d+): ([0-9a-f]{64})", merkle_text))
for size in range(0, 7):
    if mth(raw[:size]).hex() != roots[str(size)]:
        fail(f"root at size {size}")

# --- checkpoint body and key id (§8) ---
note = (GOLDEN / "checkpoint.txt").read_text()
body, sigs = note.rsplit("\n\n", 1)
lines = body.split("\n")
if lines[0] != origin or lines[1] != "6" or base64.b64decode(lines[2]) != mth(raw):
    fail("checkpoint body")
keys = dict(re.findall(r"^([a-z ]+):\s+(\S+)", (GOLDEN / "keys.txt").read_text(), re.M))
name, key_id_hex, key_b64 = keys["verifier key"].split("+")
pub = base64.b64decode(key_b64)
if pub[0] != 1 or sha256(name.encode(), b"\n", pub)[:4].hex() != key_id_hex:
    fail("key id")
sig_line = sigs.rstrip("\n")
prefix = "\u2014 " + name + " "
if not sig_line.startswith(prefix):
    fail("signature line")
sig = base64.b64decode(sig_line[len(prefix):])
if sig[:4].hex() != key_id_hex or len(sig) != 68:
    fail("signature key id / length")
if parsed[0]["key"] != keys["verifier key"]:
    fail("key entry does not carry the verifier key")

# --- tiles (§7) ---
tiles_text = (GOLDEN / "tiles.txt").read_text()
bundle = b"".join(struct.pack(">H", len(b)) + b for b in raw)
level0 = b"".join(sha256(b"\x00", b) for b in raw)
for path, data in (("tile/entries/000.p/6", bundle), ("tile/0/000.p/6", level0)):
    if f"  {path} {len(data)} {sha256(data).hex()}" not in tiles_text:
        fail(f"tile {path}")

# --- object key (§2) ---
ok = dict(re.findall(r"^([a-z0-9 ]+):\s+(.+)$", (GOLDEN / "object-key.txt").read_text(), re.M))
archive = parsed[1]
object_id = sha256(
    b"rainlogs object id v1\n", origin.encode(), b"\n", archive["dataset"].encode(), b"\n",
    struct.pack(">QQ", archive["window_start_ns"], archive["window_end_ns"]),
    archive["content_sha256"],
)[:8].hex()
if object_id != ok["object id"] or not archive["object_key"].endswith(f"-{object_id}.ndjson.zst"):
    fail("object id")
if archive["object_key"] != ok["object key"]:
    fail("object key")

print("independent verifier: all golden values re-derived from FORMAT.md")
