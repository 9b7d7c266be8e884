#!/usr/bin/env python3
"""Pages a refresh rotation writes on SQLite, by table and index.

Makes a database with `camgate migrate` (the given build's schema), gives it a history of
rotations, then replays rotations in transactions of a fixed size and reads the page number of
every frame the WAL received, naming each page's table or index through `dbstat`. A rotation
runs the statements of the token writer's `rotate` job (crates/store/src/sql/queries.rs):
`--statements new` those of this tree, `--statements old` those before access generations
(for a database made by an older build). Python's own sqlite3 module: the count depends on the
schema and the statements, not on the driver.

    crates/bench/scripts/wal_pages.py --camgate target/release/camgate
"""
import argparse
import collections
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import tempfile

CLAIM = ("UPDATE refresh_tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL "
         "AND revoked_at IS NULL AND NOT EXISTS (SELECT 1 FROM token_families f "
         "WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NOT NULL)")
EXTEND = ("UPDATE token_families SET expires_at = ? WHERE id = ? AND expires_at IS NOT NULL "
          "AND expires_at < ?")
AUDIT = ("INSERT INTO audit_events (at, kind, user_id, client_id, ip, detail) "
         "VALUES (?, 'token_refreshed', 1, 'c', '127.0.0.1', 'rotate')")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--camgate", required=True, help="the camgate binary whose schema to use")
    ap.add_argument("--statements", choices=["new", "old"], default="new")
    ap.add_argument("--families", type=int, default=64)
    ap.add_argument("--history", type=int, default=100_000, help="rotations before measuring")
    ap.add_argument("--rotations", type=int, default=2_000, help="rotations measured")
    ap.add_argument("--per-transaction", type=int, default=4)
    a = ap.parse_args()

    tmp = tempfile.mkdtemp()
    try:
        measure(a, os.path.join(tmp, "pages.db"))
    finally:
        shutil.rmtree(tmp)


def measure(a, path):
    subprocess.run([a.camgate, "--database-url", f"sqlite://{path}", "migrate"], check=True,
                   stdout=subprocess.DEVNULL)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode = WAL")
    c.execute("PRAGMA synchronous = NORMAL")
    c.execute("PRAGMA wal_autocheckpoint = 0")
    c.execute("PRAGMA foreign_keys = ON")
    c.execute("INSERT INTO users (email, email_norm, password_hash, created_at, "
              "password_changed_at) VALUES ('a@example.com', 'a@example.com', 'x', 0, 0)")
    c.execute("INSERT INTO clients (client_id, name, kind, redirect_uris, grants, scopes, "
              "profile, created_at) VALUES ('c', 'c', 'public', '[]', '[]', 'read', "
              "'angelcam', 0)")
    now = [1_000]
    live = {}
    c.execute("BEGIN")
    for _ in range(a.families):
        fid = c.execute("INSERT INTO token_families (user_id, client_pk, grant_type, "
                        "created_at, expires_at) VALUES (1, 1, 'password', 0, ?) RETURNING id",
                        (now[0] + 86_400,)).fetchone()[0]
        r = os.urandom(32)
        c.execute("INSERT INTO access_tokens (hash, family_id, scope, created_at, expires_at) "
                  "VALUES (?, ?, 'read write', ?, ?)", (os.urandom(32), fid, now[0], now[0] + 3600))
        c.execute("INSERT INTO refresh_tokens (hash, family_id, scope, created_at, expires_at) "
                  "VALUES (?, ?, 'read write', ?, ?)", (r, fid, now[0], now[0] + 86_400))
        live[fid] = r
    c.execute("COMMIT")
    families = list(live)

    def rotate(fid):
        t = now[0]
        new_a, new_r = os.urandom(32), os.urandom(32)
        assert c.execute(CLAIM, (t, live[fid])).rowcount == 1
        c.execute(EXTEND, (t + 86_400, fid, t + 86_400))
        if a.statements == "old":
            c.execute("UPDATE access_tokens SET revoked_at = ? WHERE family_id = ? "
                      "AND revoked_at IS NULL", (t, fid))
            c.execute("INSERT INTO access_tokens (hash, family_id, scope, created_at, "
                      "expires_at) VALUES (?, ?, 'read write', ?, ?)", (new_a, fid, t, t + 3600))
        else:
            c.execute("UPDATE token_families SET access_generation = access_generation + 1 "
                      "WHERE id = ?", (fid,))
            c.execute("INSERT INTO access_tokens (hash, family_id, scope, created_at, "
                      "expires_at, generation) VALUES (?, ?, 'read write', ?, ?, "
                      "(SELECT access_generation FROM token_families WHERE id = ?))",
                      (new_a, fid, t, t + 3600, fid))
        c.execute("INSERT INTO refresh_tokens (hash, family_id, scope, created_at, expires_at) "
                  "VALUES (?, ?, 'read write', ?, ?)", (new_r, fid, t, t + 86_400))
        c.execute(AUDIT, (t,))
        live[fid] = new_r

    # History: many rotations per second of clock, as under load (10,000/s).
    c.execute("BEGIN")
    for i in range(a.history):
        rotate(families[i % len(families)])
        if i % 10_000 == 9_999:
            now[0] += 1
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    rnd = random.Random(7)
    order = [rnd.choice(families) for _ in range(a.rotations)]
    for i in range(0, len(order), a.per_transaction):
        c.execute("BEGIN IMMEDIATE")
        for fid in order[i:i + a.per_transaction]:
            rotate(fid)
        c.execute("COMMIT")

    wal = open(path + "-wal", "rb").read()
    page_size = struct.unpack(">I", wal[8:12])[0]
    frames, off = [], 32
    while off + 24 + page_size <= len(wal):
        frames.append(struct.unpack(">I", wal[off:off + 4])[0])
        off += 24 + page_size
    names = dict((p, n) for n, p in c.execute("SELECT name, pageno FROM dbstat"))
    by = collections.Counter(names.get(p, "?") for p in frames)
    n = len(order)
    print(f"{len(frames) / n:.2f} pages per rotation ({n} rotations, "
          f"{a.per_transaction} per transaction, {a.families} families, "
          f"{a.history} rotations before, statements: {a.statements})")
    for name, k in by.most_common():
        print(f"  {name:36} {k / n:5.2f}")


if __name__ == "__main__":
    main()
