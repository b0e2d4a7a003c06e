"""An auditor's re-implementation of docs/FORMAT.md, written from the document alone.

It re-derives every hash in the golden files from the entry bytes, using only the Python
standard library, and exits non-zero on the first disagreement. Signatures are not checked here
(the standard library has no Ed25519); the key id is. Every entry is also held to the per-kind
rules of §4.2, kinds 7 (`late`), 8 (`shortfall`) and 9 (`index`) included, and a few broken
entries must be rejected. The index object of §12 is rebuilt from its three records.
"""
import ipaddress
import json
import base64
import hashlib
import re
import struct
import sys
import time
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


class Reject(Exception):
    """The entry breaks FORMAT.md §4 (a decoder must reject it)."""


KINDS = {1: "archive", 2: "empty", 3: "gap", 4: "prune", 5: "key", 6: "erasure", 7: "late",
         8: "shortfall", 9: "index"}
# Kinds whose chain link carries their stored SHA-256 (§5).
CHAIN_OBJECT_KINDS = {1, 7, 9}
# Kinds whose entry holds an object (§4.2: a `late` entry is laid out and checked as an `archive` entry).
OBJECT_KINDS = {1, 7}
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def parse_entry(b):
    """Decodes the fields of FORMAT.md §4.1 in order."""
    pos = 0

    def take(n):
        nonlocal pos
        if pos + n > len(b):
            raise Reject("entry truncated")
        out = b[pos:pos + n]
        pos += n
        return out

    def u(n):
        return int.from_bytes(take(n), "big")

    def text():
        return take(u(2)).decode("utf-8")

    if take(4) != b"RLEN" or u(1) != 1:
        raise Reject("magic/version")
    e = {}
    e["kind"] = u(1)
    if e["kind"] not in KINDS:
        raise Reject(f"unknown kind {e['kind']}")
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
        raise Reject("trailing bytes")
    check_rules(e)
    return e


def check_rules(e):
    """The per-kind rules of FORMAT.md §4.2 (names and object texts only as far as the goldens need)."""
    kind = e["kind"]
    zero = lambda *fields: [f for f in fields if e[f] not in (0, "", bytes(32))]
    window = ("window_start_ns", "window_end_ns")
    obj = ("object_key", "object_version", "stored_size", "stored_sha256", "content_sha256",
           "record_count", "retain_until_ns")
    prune = ("prune_target_index", "prune_target_entry_id", "prune_policy", "pruned_at_ns")
    if kind in OBJECT_KINDS:
        must_be_zero = zero("gap_reason", *prune, "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["window_start_ns"] < e["window_end_ns"]
              and 1 <= e["method"] <= 4 and e["sampling"] != 0
              and 1 <= len(e["object_key"]) <= 1024 and len(e["object_version"]) <= 1024
              and e["stored_size"] >= 1 and e["record_count"] >= 1 and e["retain_until_ns"] >= 1)
    elif kind == 2:
        must_be_zero = zero(*obj, "gap_reason", *prune, "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["window_start_ns"] < e["window_end_ns"]
              and 1 <= e["method"] <= 4 and e["sampling"] != 0)
    elif kind == 3:
        must_be_zero = zero("sampling", *obj, *prune, "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["window_start_ns"] < e["window_end_ns"]
              and 1 <= e["method"] <= 4 and 1 <= e["gap_reason"] <= 6)
    elif kind == 4:
        must_be_zero = zero(*window, "method", "sampling", "stored_size", "stored_sha256",
                            "content_sha256", "record_count", "retain_until_ns", "gap_reason", "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["object_key"] and e["prune_target_index"] < e["index"]
              and e["prune_target_entry_id"] != bytes(32) and NAME.fullmatch(e["prune_policy"])
              and e["pruned_at_ns"] >= 1)
    elif kind == 8:
        must_be_zero = zero("sampling", *(f for f in obj if f != "record_count"), "gap_reason",
                            *prune, "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["window_start_ns"] < e["window_end_ns"]
              and 1 <= e["method"] <= 4 and e["record_count"] >= 1)
    elif kind == 9:
        must_be_zero = zero("method", "sampling", "content_sha256", "record_count", "gap_reason",
                            "prune_policy", "pruned_at_ns", "key")
        ok = (NAME.fullmatch(e["dataset"]) and e["window_start_ns"] < e["window_end_ns"]
              and e["object_key"].endswith(".index") and len(e["object_version"]) <= 1024
              and e["stored_size"] >= 1 and e["retain_until_ns"] >= 1
              and e["prune_target_index"] < e["index"] and e["prune_target_entry_id"] != bytes(32))
    elif kind == 5:
        must_be_zero = zero("dataset", *window, "method", "sampling", *obj, "gap_reason", *prune)
        ok = bool(e["key"])
    else:
        must_be_zero = zero("dataset", *window, "method", "sampling", *obj, "gap_reason", *prune, "key")
        ok = True
    if must_be_zero or not ok or e["sealed_at_ns"] < 1:
        raise Reject(f"{KINDS[kind]} entry breaks §4.2 ({must_be_zero or 'a required field'})")


def decode(b, what):
    try:
        return parse_entry(b)
    except Reject as why:
        fail(f"{what}: {why}")


def compact(ns):
    """§2 window label time: YYYYMMDDTHHMMSS[.fffffffff]Z."""
    secs, frac = divmod(ns, 10**9)
    text = time.strftime("%Y%m%dT%H%M%S", time.gmtime(secs))
    return text + (f".{frac:09d}" if frac else "") + "Z"


def object_key(prefix, e, late):
    """§2: the key of an archive object, or of a late object (`.late-` where an archive has `-`)."""
    oid = sha256(
        b"rainlogs object id v1\n", e["origin"].encode(), b"\n", e["dataset"].encode(), b"\n",
        struct.pack(">QQ", e["window_start_ns"], e["window_end_ns"]), e["content_sha256"],
    )[:8].hex()
    tenant_zone = e["origin"].removeprefix("rainlogs/")
    hour = time.strftime("%Y/%m/%d/%H", time.gmtime(e["window_start_ns"] // 10**9))
    label = compact(e["window_start_ns"]) + "_" + compact(e["window_end_ns"])
    zone = (prefix + "/" if prefix else "") + tenant_zone + "/"
    mark = ".late-" if late else "-"
    return oid, f"{zone}{e['dataset']}/{hour}/{label}{mark}{oid}.ndjson.zst"


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
    e = decode(b, f"entry {index}")
    if KINDS[e["kind"]] != kind or e["index"] != int(index):
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
    obj = e["stored_sha256"] if e["kind"] in OBJECT_KINDS else bytes(32)
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
if object_key(ok["prefix"], archive, late=False) != (object_id, ok["object key"]):
    fail("object key layout")

# --- the erasure example (§4.2, §4.6) ---
erasure_text = (GOLDEN / "entry-erasure.txt").read_text()
m = re.match(r"entry 6 \(erasure\), (\d+) bytes\nentry id: ([0-9a-f]{64})\nprev_chain_hash: ([0-9a-f]{64})\n((?:  [0-9a-f]+\n)+)",
             erasure_text)
if not m:
    fail("entry-erasure.txt shape")
b = bytes.fromhex("".join(m.group(4).split()))
erasure = decode(b, "erasure entry")
if (len(b) != int(m.group(1)) or sha256(b).hex() != m.group(2) or erasure["kind"] != 6
        or erasure["prev_chain_hash"] != head or erasure["prev_chain_hash"].hex() != m.group(3)):
    fail("erasure entry")

def linked_entry(file, index, kind, prev, text=None):
    """An entry sealed after `prev` (a chain hash), as its golden file shows it: its bytes decode
    strictly to `kind` at `index` of the sample's origin, its length, id, prev_chain_hash and chain
    hash are the file's, and the chain hash follows §5. Returns the bytes, the entry and its chain
    hash."""
    text = text if text is not None else (GOLDEN / file).read_text()
    m = re.match(rf"entry {index} \({KINDS[kind]}\), (\d+) bytes\nentry id: ([0-9a-f]{{64}})\n"
                 r"prev_chain_hash: ([0-9a-f]{64})\nchain hash: ([0-9a-f]{64}) = .*\n((?:  [0-9a-f]+\n)+)", text)
    if not m:
        fail(f"{file} shape")
    b = bytes.fromhex("".join(m.group(5).split()))
    e = decode(b, file)
    if len(b) != int(m.group(1)) or sha256(b).hex() != m.group(2):
        fail(f"{file}: length / id")
    if e["kind"] != kind or e["index"] != index or e["origin"] != origin:
        fail(f"{file}: kind / index / origin")
    if e["prev_chain_hash"] != prev or prev.hex() != m.group(3):
        fail(f"{file}: prev_chain_hash")
    chain = sha256(prev, e["stored_sha256"] if kind in CHAIN_OBJECT_KINDS else bytes(32), sha256(b))
    if chain.hex() != m.group(4):
        fail(f"{file}: chain hash")
    return b, e, chain


# --- the late example (kind 7: §2, §4.2, §5, §9 step 5) ---
# It follows the sample log, and its chain link carries its stored SHA-256 as an archive's does.
late_bytes, late, late_chain = linked_entry("entry-late.txt", 6, 7, head)
# Its window is one an earlier archive or empty entry of its dataset accounts for, exactly.
named = [e for e in parsed if e["kind"] in (1, 2) and e["dataset"] == late["dataset"]
         and (e["window_start_ns"], e["window_end_ns"]) == (late["window_start_ns"], late["window_end_ns"])]
if not named:
    fail("late entry names no window of an earlier archive or empty entry")
# The annotated dump shows the same bytes, field by field.
annotated = (GOLDEN / "entry-late-annotated.txt").read_text()
dumped = b"".join(bytes.fromhex(line.split()[2]) for line in annotated.splitlines())
if dumped != late_bytes:
    fail("entry-late-annotated.txt is not the late entry")
lk = dict(re.findall(r"^([a-z0-9 ]+):\s+(.+)$", (GOLDEN / "object-key-late.txt").read_text(), re.M))
late_id, late_key = object_key(lk["prefix"], late, late=True)
if (late_id != lk["object id"] or late_key != lk["late key"] or late["object_key"] != late_key
        or late["content_sha256"].hex() != lk["content sha256"] or late["origin"] != lk["origin"]):
    fail("late object key")
# A decoder rejects what breaks the archive rules in a late entry, and kinds it does not know.
def rejected(b):
    try:
        parse_entry(b)
    except Reject:
        return True
    return False


record_count_at = 4 + 1 + 1 + 8 + (2 + len(origin)) + (2 + len(late["dataset"])) + 8 + 8 + 1 + 4 \
    + (2 + len(late["object_key"])) + (2 + len(late["object_version"])) + 8 + 32 + 32
if late_bytes[record_count_at:record_count_at + 8] != struct.pack(">Q", late["record_count"]):
    fail("record_count offset")
for broken in (late_bytes[:5] + b"\x09" + late_bytes[6:],
               late_bytes[:5] + b"\x08" + late_bytes[6:],
               late_bytes[:record_count_at] + bytes(8) + late_bytes[record_count_at + 8:],
               raw[2][:5] + b"\x07" + raw[2][6:]):
    if not rejected(broken):
        fail("a broken late entry was accepted")


# --- the shortfall example (kind 8: §4.2, §5, §9 step 5) ---
# It follows the late entry, and holds no object: its chain link carries 32 zero bytes.
sf_bytes, sf, sf_chain = linked_entry("entry-shortfall.txt", 7, 8, late_chain)
# §9 step 5: it names exactly the window of an earlier archive or empty entry, and the source's count
# exceeds what the entries before it hold for that window (the archive's records, 0 for an empty
# window, plus the late entries') by more than the tolerance of §4.2.
before = parsed + [late]
same = lambda e: (e["dataset"] == sf["dataset"]
                  and (e["window_start_ns"], e["window_end_ns"]) == (sf["window_start_ns"], sf["window_end_ns"]))
if not [e for e in before if e["kind"] in (1, 2) and same(e)]:
    fail("shortfall entry names no window of an earlier archive or empty entry")
held = sum(e["record_count"] for e in before if e["kind"] in (1, 7) and same(e))
tolerance = max(5, sf["record_count"] // 20)
if not sf["record_count"] > held + tolerance:
    fail("shortfall entry counts no more than the log holds plus the tolerance")
annotated = (GOLDEN / "entry-shortfall-annotated.txt").read_text()
if b"".join(bytes.fromhex(line.split()[2]) for line in annotated.splitlines()) != sf_bytes:
    fail("entry-shortfall-annotated.txt is not the shortfall entry")
count_at = 4 + 1 + 1 + 8 + (2 + len(origin)) + (2 + len(sf["dataset"])) + 8 + 8 + 1 + 4 + 2 + 2 + 8 + 32 + 32
for broken in (sf_bytes[:count_at] + bytes(8) + sf_bytes[count_at + 8:],
               sf_bytes[:count_at - 72] + b"\x01" + sf_bytes[count_at - 71:]):
    if not rejected(broken):
        fail("a broken shortfall entry was accepted")



# --- the index example (kind 9: §4.2, §5, §9 step 7; the index object: §12) ---
first, second = (GOLDEN / "entries-indexed.txt").read_text().split("\n\n")
arch_bytes, arch, arch_chain = linked_entry("entries-indexed.txt", 8, 1, sf_chain, first + "\n")
ix_bytes, ix, _ = linked_entry("entries-indexed.txt", 9, 9, arch_chain, second)
annotated = (GOLDEN / "entry-index-annotated.txt").read_text()
if b"".join(bytes.fromhex(line.split()[2]) for line in annotated.splitlines()) != ix_bytes:
    fail("entry-index-annotated.txt is not the index entry")
# §4.2: it names entry 8 by index and id, with its dataset, window and retain-until, and its key.
if (ix["prune_target_index"] != 8 or ix["prune_target_entry_id"] != sha256(arch_bytes)
        or (ix["dataset"], ix["window_start_ns"], ix["window_end_ns"], ix["retain_until_ns"])
        != (arch["dataset"], arch["window_start_ns"], arch["window_end_ns"], arch["retain_until_ns"])
        or ix["object_key"] != arch["object_key"][:-len(".ndjson.zst")] + ".index"):
    fail("index entry does not name its archive entry as §4.2 says")
# An archive entry relabelled as an index entry breaks §4.2 (it has a method and records).
if not rejected(arch_bytes[:5] + b"\x09" + arch_bytes[6:]):
    fail("an archive entry relabelled as an index entry was accepted")

# §12.5: the records of the indexed archive, as FORMAT.md lists them.
records = [
    b'{"ClientIP":"203.0.113.7","EdgeStartTimestamp":1768485780123456789,"RayID":"8f0a1b2c3d4e5f80"}',
    b'{"ClientIP":"203.0.113.9","EdgeStartTimestamp":1768485781123456789,"RayID":"8f0a1b2c3d4e5f81"}',
    b'{"ClientIP":"2001:db8:5:1::7","EdgeStartTimestamp":1768485790123456789,"RayID":"8f0a1b2c3d4e5f82"}',
]
content = b"".join(r + b"\n" for r in records)
if sha256(content) != arch["content_sha256"] or arch["record_count"] != len(records):
    fail("the §12.5 records are not entry 8's content")


def keys_of(line):
    """§12.2: the Ray ID, client address and time of one record."""
    def no_duplicates(pairs):
        names = [k for k, _ in pairs]
        for watched in ("RayID", "rayName", "ClientIP", "clientIP", "EdgeStartTimestamp", "Datetime",
                        "datetime"):
            if names.count(watched) > 1:
                raise ValueError("duplicate member")
        return dict(pairs)
    try:
        obj = json.loads(line.decode("utf-8"), object_pairs_hook=no_duplicates)
    except ValueError:
        return None, None, None
    if not isinstance(obj, dict):
        return None, None, None
    first = lambda *names: next((obj[n] for n in names if n in obj), None)
    ray = first("RayID", "rayName")
    ray = (bytes.fromhex(ray[:16]) if isinstance(ray, str)
           and re.fullmatch(r"[0-9a-fA-F]{16}(-[A-Za-z]{3,4})?", ray) else None)
    ip = first("ClientIP", "clientIP")
    try:
        ip = ipaddress.ip_address(ip) if isinstance(ip, str) else None
    except ValueError:
        ip = None
    t = first("EdgeStartTimestamp", "Datetime", "datetime")
    if isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 10**19:
        t = t * 10**9 if t < 100_000_000_000 else t
    else:
        t = None  # (RFC 3339 strings are not needed for the example)
    return ray, ip, t


def leb128(values):
    out, prev = bytearray(), 0
    for v in values:
        d, prev = v - prev, v
        while True:
            low, d = d & 0x7F, d >> 7
            out.append(low | (0x80 if d else 0))
            if not d:
                break
    return bytes(out)


def golomb(values, p=10):
    bits, prev = [], 0
    for v in values:
        d, prev = v - prev, v
        bits += [1] * (d >> p) + [0] + [(d >> i) & 1 for i in range(p - 1, -1, -1)]
    bits += [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


rays, v4, v6, times, count = set(), set(), set(), [], 0
for line in content.split(b"\n"):
    if not line:
        continue
    count += 1
    ray, ip, t = keys_of(line)
    if ray is not None:
        rays.add(ray)
    if ip is not None:
        mapped = ip.ipv4_mapped if ip.version == 6 else ip
        if mapped is not None:
            v4.add(int(mapped) >> 8)
        else:
            v6.add(int(ip) >> 80)
    if t is not None:
        times.append(t)
n = len(rays)
fingerprints = sorted(
    (int.from_bytes(sha256(b"rainlogs ray v1\n", r)[:8], "big") * n * 1533) >> 64 for r in rays)
stored_size = 180  # the one frame is the whole (stand-in) object, as §12.5 says
frame = (struct.pack(">QQQQQQ", 0, stored_size, 0, len(content), 0, count) + sha256(content)
         + struct.pack(">QQ", min(times), max(times)))
for c, coded in ((n, golomb(fingerprints)), (len(v4), leb128(sorted(v4))), (len(v6), leb128(sorted(v6)))):
    frame += struct.pack(">II", c, len(coded)) + coded
rebuilt = b"RLIX\x01" + arch["stored_sha256"] + arch["content_sha256"] + struct.pack(">I", 1) + frame
m = re.match(r"index object of .*, (\d+) bytes, SHA-256 ([0-9a-f]{64})\n((?:  [0-9a-f]+\n)+)",
             (GOLDEN / "index-object.txt").read_text())
if not m:
    fail("index-object.txt shape")
stored = bytes.fromhex("".join(m.group(3).split()))
if rebuilt != stored:
    fail(f"index object rebuilt from §12 differs:\n{rebuilt.hex()}\n{stored.hex()}")
if (len(stored) != int(m.group(1)) or sha256(stored).hex() != m.group(2)
        or ix["stored_sha256"] != sha256(stored) or ix["stored_size"] != len(stored)):
    fail("index entry does not commit the index object")

print("independent verifier: all golden values re-derived from FORMAT.md")
