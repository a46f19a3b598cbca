#!/usr/bin/env python3
# SQLite commit latency on this machine, for docs/storage.md: one row per fsynced transaction, then 64.
# Run: python3 scripts/measure-sqlite-commit.py   (writes a temporary database in the current directory, or $TMPDIR_FOR_DB, and removes it)
import sqlite3, os, time, statistics, tempfile, shutil
d = tempfile.mkdtemp(dir=os.environ.get("TMPDIR_FOR_DB", "."))
db = sqlite3.connect(os.path.join(d, "log.db"), isolation_level=None)
db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE log(idx INTEGER PRIMARY KEY, term INTEGER, data BLOB)")
payload = os.urandom(128)
lat = []
i = 0
for _ in range(2000):
    i += 1
    t = time.perf_counter()
    db.execute("BEGIN"); db.execute("INSERT INTO log VALUES(?,?,?)", (i, 1, payload)); db.execute("COMMIT")
    lat.append((time.perf_counter() - t) * 1e6)
lat.sort()
print("sqlite WAL synchronous=FULL, 1 x 128B entry per commit: p50 %.0f us, p99 %.0f us" % (lat[1000], lat[1980]))
t = time.perf_counter(); n = 0
for _ in range(500):
    db.execute("BEGIN")
    db.executemany("INSERT INTO log VALUES(?,?,?)", [(i + k + 1, 1, payload) for k in range(64)])
    db.execute("COMMIT"); i += 64; n += 64
print("sqlite, 64 entries per commit: %.0f entries/s" % (n / (time.perf_counter() - t)))
shutil.rmtree(d)
