"""`FeatureCache`: what the pipeline computed for a file, kept in one SQLite file.

An entry is keyed by the sha256 of the input file's bytes and the fingerprint of every
stage that computed it, so a changed file or a changed stage is a different key and stale
values are never served. Two kinds of entries are kept:

- ``features``: sampled frame indices, times, boxes, detection scores, frames sampled and
  the feature matrix (float32, stored exactly; its dtype and shape are stated in the row);
- ``crops``: the same per-frame data with the uint8 face crops, keyed by the stages up to
  the backbone, so a new backbone reuses decoding and face detection.

Beside them it records the absolute path, size and timestamps of each file it hashed, so an
unchanged file is not hashed again, and the stage configs each fingerprint stands for.
`lookup` answers for a batch of inputs in one trip (features, else crops, else a miss);
`clear` removes everything, leaving nothing of it in the file or its side files.

The file is in WAL mode: several processes may read and fill it at once, and a process
killed mid-write loses only its uncommitted transaction. Every row carries a checksum of
its blobs; a row whose checksum or shape does not match is never returned, and `verify`
finds and drops such rows.

The cache is bounded: `max_bytes` (default 2 GB, or ``DEEPFAKE_DETECT_CACHE_MAX_BYTES``) caps
the bytes of its entries. Each write that takes it over the cap evicts the least recently
used entries down to 90% of it (`prune`), and an entry larger than `max_entry_bytes` (a
quarter of the cap, at most `MAX_ENTRY_BYTES`: the crops of a very long video) is not stored,
with a warning. The pipeline treats the cache as an optimisation: a failed read or write
(a full disk, a lock held too long, a damaged file) warns once and goes on without it
(`FeatureExtractor`); this class itself raises `CacheError`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .digests import file_sha256
from .errors import CacheError
from .locations import cache_root, parse_bytes
from .results import FaceCrops, FaceFeatures

ENV_VAR = "DEEPFAKE_DETECT_CACHE"
MAX_BYTES_ENV_VAR = "DEEPFAKE_DETECT_CACHE_MAX_BYTES"
#: The default cap on the bytes of a cache's entries: a laptop's worth (the crops of ~40,000
#: faces at 128 px, or the features of ~1,000,000 frames of a 512-wide backbone).
DEFAULT_MAX_BYTES = 2_000_000_000
#: The largest single entry stored (SQLite refuses blobs over 1e9 bytes): a quarter of the cap,
#: at most this. The crops of ~5,000 faces at 128 px, 1,000 at 288 px.
MAX_ENTRY_BYTES = 256 << 20
FILENAME = "features.sqlite"
APPLICATION_ID = 0x44464431  # "DFD1" in the SQLite header: marks the file as this library's cache
SCHEMA_VERSION = 1
#: A file modified this recently may change again within the file system's timestamp
#: granularity, so its (size, mtime, ctime) are not trusted to stand for its digest.
RACY_NS = 2_000_000_000
#: Rows read are marked as used at most this often (seconds), so repeated reads stay reads.
TOUCH_EVERY = 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    kind TEXT NOT NULL,             -- 'features' or 'crops'
    digest TEXT NOT NULL,           -- sha256 of the input file's bytes
    fingerprint TEXT NOT NULL,      -- the stages that computed the value
    frames_sampled INTEGER NOT NULL,
    frame_indices BLOB NOT NULL,    -- int64 (N,)
    times BLOB NOT NULL,            -- float64 (N,), seconds
    boxes BLOB NOT NULL,            -- float32 (N, 4): x1 y1 x2 y2
    scores BLOB NOT NULL,           -- float32 (N,)
    array BLOB NOT NULL,            -- features (N, D) or crops (N, S, S, 3), C order
    dtype TEXT NOT NULL,            -- numpy dtype string of `array`, e.g. '<f4'
    shape TEXT NOT NULL,            -- JSON list: the shape of `array`
    checksum TEXT NOT NULL,         -- blake2b of the header fields and every blob
    nbytes INTEGER NOT NULL,        -- bytes of all blobs
    created REAL NOT NULL,          -- unix time
    used REAL NOT NULL,             -- unix time of the last read (to within TOUCH_EVERY)
    PRIMARY KEY (kind, fingerprint, digest)
);
CREATE INDEX IF NOT EXISTS entries_used ON entries (used);
CREATE INDEX IF NOT EXISTS entries_lru ON entries (used, nbytes);  -- sums and evictions without the blobs
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    stages TEXT NOT NULL            -- JSON: the stage configs the fingerprint is the digest of
);
CREATE TABLE IF NOT EXISTS files (  -- pre-check: an unchanged file is not hashed again
    path TEXT PRIMARY KEY,
    device INTEGER NOT NULL, inode INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    digest TEXT NOT NULL
);
"""
_COLUMNS = ("kind, digest, fingerprint, frames_sampled, frame_indices, times, boxes, scores, array, dtype, shape, "
            "checksum, nbytes, created, used")
_READ = "digest, frames_sampled, frame_indices, times, boxes, scores, array, dtype, shape, checksum, used"


Record = FaceFeatures | FaceCrops
_KINDS: dict[str, tuple[type, str]] = {"features": (FaceFeatures, "features"), "crops": (FaceCrops, "crops")}


@dataclass(frozen=True)
class Found:
    """What the cache holds for one input (`FeatureCache.lookup`): its features (a hit), else
    its face crops (only embedding is left), else neither (a miss). `digest` is None for a
    file that cannot be read."""

    digest: str | None
    features: FaceFeatures | None = None
    crops: FaceCrops | None = None


class _BadEntry(Exception):
    """A stored row that does not decode to what it claims."""


def default_path() -> Path:
    """`features.sqlite` in `cache_root()`: `$XDG_CACHE_HOME/deepfake_detect`, else under `~/.cache`."""
    return cache_root() / FILENAME


def max_bytes_setting(value: int | str | None = "default") -> int | None:
    """The cap on a cache's entries, in bytes, that `value` names: None or "none" (no cap), a
    number of bytes, a text such as "500MB" or "2GiB", or "default": the
    ``DEEPFAKE_DETECT_CACHE_MAX_BYTES`` environment variable, else `DEFAULT_MAX_BYTES`."""
    if isinstance(value, str) and value.strip().lower() == "default":
        value = os.environ.get(MAX_BYTES_ENV_VAR, "").strip() or DEFAULT_MAX_BYTES
        where = f" (environment variable {MAX_BYTES_ENV_VAR})"
    else:
        where = ""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "unlimited")):
        return None
    try:
        return parse_bytes(value)
    except ValueError as e:
        raise ValueError(f"cache max_bytes{where}: {e}") from None


def open_cache(spec: str | os.PathLike | FeatureCache | None = "default") -> FeatureCache | None:
    """The cache `spec` names: None (no cache), a `FeatureCache`, a path, or "default".

    "default" is the path in the `DEEPFAKE_DETECT_CACHE` environment variable ("none"
    there turns the cache off), else `default_path()`. Its size cap is `max_bytes_setting()`.
    """
    if spec is None or isinstance(spec, FeatureCache):
        return spec
    if isinstance(spec, str) and spec == "default":
        env = os.environ.get(ENV_VAR, "").strip()
        if env.lower() == "none":
            return None
        return FeatureCache(env or None)
    return FeatureCache(spec)


class FeatureCache:
    """Features and face crops of input files, in one SQLite file.

    Args:
        path: the cache file, or a folder to hold `features.sqlite` (a path that does not
            exist yet is a folder unless it has a suffix such as ".sqlite"). None: the
            default location, `default_path()`.
        timeout: seconds to wait for another process's write to finish.
        max_bytes: the cap on the bytes of its entries, as `max_bytes_setting` reads it
            ("default": ``DEEPFAKE_DETECT_CACHE_MAX_BYTES``, else 2 GB; None: no cap). A write
            that takes the cache over it evicts the least recently used entries.

    Raises `CacheError` if the file at `path` is not a cache (a foreign or corrupt file).
    """

    def __init__(self, path: str | os.PathLike | None = None, timeout: float = 60.0,
                 max_bytes: int | str | None = "default"):
        self.path = _file_path(path)
        self.timeout = timeout
        self.max_bytes = max_bytes_setting(max_bytes)
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._db()  # open now, so a foreign file is reported here

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "timeout": self.timeout, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["timeout"], state.get("max_bytes", "default"))

    @property
    def max_entry_bytes(self) -> int:
        """The largest entry stored: a quarter of `max_bytes`, at most `MAX_ENTRY_BYTES`."""
        return MAX_ENTRY_BYTES if self.max_bytes is None else min(MAX_ENTRY_BYTES, self.max_bytes // 4)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def __enter__(self) -> FeatureCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # --- connection ----------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This process's connection (a forked child opens its own)."""
        if self._conn is None or self._pid != os.getpid():
            with self._errors("opening"):
                try:
                    self._conn = self._connect()
                except OSError as e:
                    raise CacheError(f"{self.path}: cannot create the feature cache ({e}). {_ELSEWHERE}") from e
            self._pid = os.getpid()
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        try:
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app != APPLICATION_ID or version != SCHEMA_VERSION:
                self._initialize(conn)
            conn.execute("PRAGMA synchronous=NORMAL")
            _add_lru_index(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _initialize(self, conn: sqlite3.Connection) -> None:
        """Create the schema in a new, empty file; refuse any other file."""
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a file without tables only
        conn.execute("PRAGMA journal_mode=WAL")
        with _transaction(conn):
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if app == APPLICATION_ID and version != SCHEMA_VERSION:
                raise CacheError(f"{self.path}: a feature cache of schema version {version}; this version of "
                                 f"deepfake-detect reads version {SCHEMA_VERSION}. Clear it by deleting the file, "
                                 "or point the cache elsewhere.")
            if app != APPLICATION_ID:
                if app != 0 or conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise CacheError(f"{self.path} is an SQLite database of another application, not a "
                                     f"deepfake-detect feature cache. {_ELSEWHERE}")
                for statement in _SCHEMA.split(";")[:-1]:  # executescript would commit the transaction
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def _errors(self, doing: str):
        """SQLite's errors as `CacheError`s that name the file and what to do."""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if "not a database" in str(e) or "malformed" in str(e):
                raise CacheError(
                    f"{self.path} is not a readable deepfake-detect feature cache ({e}). {_ELSEWHERE}") from e
            advice = f" {_ELSEWHERE}" if doing == "opening" else ""
            raise CacheError(f"{self.path}: {doing} the feature cache failed: {e}.{advice}") from e

    @contextmanager
    def _write(self, doing: str):
        """One write transaction on this process's connection."""
        with self._lock, self._errors(doing), _transaction(self._db()) as db:
            yield db

    # --- file digests --------------------------------------------------------------------
    def digests(self, paths: Sequence[str | os.PathLike]) -> list[str | None]:
        """The sha256 of each file's bytes (None for a file that cannot be read).

        A file whose device, inode, size, mtime and ctime match those recorded when it was
        last hashed is not read again; a file modified within `RACY_NS` of hashing is not
        recorded, so a change inside the file system's timestamp granularity is never missed.
        """
        keys = [os.path.abspath(p) for p in paths]
        with self._lock, self._errors("reading file digests"):
            rows = _select_in(self._db(), "SELECT path, device, inode, size, mtime_ns, ctime_ns, digest FROM files "
                              "WHERE path IN ({})", keys)
        known = {row[0]: row[1:] for row in rows}
        out: list[str | None] = []
        fresh = []
        for key in keys:
            try:
                st = os.stat(key)
                signature = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                row = known.get(key)
                if row is not None and tuple(row[:5]) == signature:
                    out.append(row[5])
                    continue
                started = time.time_ns()
                digest = file_sha256(key)
            except OSError:
                out.append(None)
                continue
            out.append(digest)
            if max(st.st_mtime_ns, st.st_ctime_ns) < started - RACY_NS:
                fresh.append((key, *signature, digest))
        if fresh:
            try:
                with self._write("recording file digests") as db:
                    db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)", fresh)
            except CacheError:
                pass  # an optimisation: the files are hashed again next time
        return out

    # --- reads ---------------------------------------------------------------------------
    def lookup(self, paths: Sequence[str | os.PathLike], fingerprint: str,
               crops_fingerprint: str) -> list[Found]:
        """What is stored for each of `paths`, in one trip: the features computed by
        `fingerprint` where there are, else the crops cut by `crops_fingerprint`."""
        digests = self.digests(paths)
        features = self.get_features([d for d in digests if d], fingerprint)
        crops = self.get_crops([d for d in digests if d and d not in features], crops_fingerprint)
        return [Found(d, features.get(d), crops.get(d)) if d else Found(None) for d in digests]

    def get_features(self, digests: Iterable[str], fingerprint: str) -> dict[str, FaceFeatures]:
        """The stored features of those `digests` computed by `fingerprint`; misses are absent."""
        return self._get("features", digests, fingerprint)

    def get_crops(self, digests: Iterable[str], fingerprint: str) -> dict[str, FaceCrops]:
        """The stored face crops of those `digests` cut by `fingerprint`; misses are absent."""
        return self._get("crops", digests, fingerprint)

    def iter_features(self, digests: Iterable[str], fingerprint: str,
                      batch_size: int = 256) -> Iterator[tuple[str, FaceFeatures | None]]:
        """``(digest, features or None)`` for each digest, in order, read `batch_size` at a
        time: a whole dataset streams through without being held in memory."""
        for batch in batched(digests, batch_size):
            found = self.get_features(batch, fingerprint)
            for digest in batch:
                yield digest, found.get(digest)

    def _get(self, kind: str, digests: Iterable[str], fingerprint: str) -> dict:
        cls, field = _KINDS[kind]
        wanted = list(dict.fromkeys(digests))
        with self._lock, self._errors("reading"):
            rows = _select_in(self._db(), f"SELECT {_READ} FROM entries WHERE kind = ? AND fingerprint = ? "
                              "AND digest IN ({})", wanted, (kind, fingerprint))
        out, stale, bad = {}, [], []
        now = time.time()
        for row in rows:
            try:
                out[row[0]] = _decode(cls, field, kind, fingerprint, row)
            except _BadEntry:
                bad.append(row[0])
                continue
            if row[-1] < now - TOUCH_EVERY:
                stale.append((now, kind, fingerprint, row[0]))
        if bad:
            warnings.warn(f"{self.path}: {len(bad)} damaged {kind} entr{'y' if len(bad) == 1 else 'ies'} ignored and "
                          f"computed again; `deepfake-detect cache --path {self.path} verify --drop` (or "
                          "FeatureCache.verify(drop=True)) removes them", RuntimeWarning, stacklevel=3)
        if stale:
            try:
                with self._write("marking entries used") as db:
                    db.executemany("UPDATE entries SET used = ? WHERE kind = ? AND fingerprint = ? AND digest = ?",
                                   stale)
            except CacheError:
                pass  # only the eviction order suffers: the entries read are returned all the same
        return out

    # --- writes --------------------------------------------------------------------------
    def writer(self, max_entries: int = 64, max_seconds: float = 1.0, on_error=None) -> CacheWriter:
        """A `CacheWriter` that commits every `max_entries` entries or `max_seconds` (`on_error`:
        as in `CacheWriter`)."""
        return CacheWriter(self, max_entries, max_seconds, on_error)

    def put_features(self, digest: str, fingerprint: str, features: FaceFeatures,
                     stages: dict | None = None) -> None:
        """Store one input's features now (one transaction); `stages` describes the fingerprint."""
        with self.writer() as w:
            w.put_features(digest, fingerprint, features, stages)

    def put_crops(self, digest: str, fingerprint: str, crops: FaceCrops, stages: dict | None = None) -> None:
        """Store one input's face crops now (one transaction); `stages` describes the fingerprint."""
        with self.writer() as w:
            w.put_crops(digest, fingerprint, crops, stages)

    def import_shards(self, paths: str | os.PathLike | Sequence[str | os.PathLike],
                      fingerprint: str | None = None) -> dict[str, int]:
        """Fill the cache with the features of Parquet shards written by a bulk run
        (`deepfake_detect.shards`: ``deepfake-detect extract --output DIR``, on Beam or not),
        stored as the local path stores them: under each input file's sha256 and the shard's
        extraction fingerprint, so `fit`, `evaluate` and `cross_validate` with the same stages
        find them and extract nothing.

        `paths`: shard files, folders (their ``features-*.parquet``) or glob patterns.
        `fingerprint`: refuse shards of another one (`CacheError`). Rows with status "error"
        hold nothing and are skipped; "no_face" rows are stored, as locally (no face found).
        Returns counts: ``files``, ``ok`` and ``no_face`` (imported), ``error`` (skipped).
        """
        from . import shards

        files = shards.shard_files(paths, "features")
        counts = {"files": len(files), "ok": 0, "no_face": 0, "error": 0}
        with self.writer(max_entries=256) as writer:
            for path in files:
                try:
                    meta = shards.read_metadata(path)
                except ValueError as e:
                    raise CacheError(str(e)) from e
                if meta.get("kind") != "features" or meta.get("format_version") != shards.FORMAT_VERSION:
                    raise CacheError(f"{path}: a {meta.get('kind')} shard of format {meta.get('format_version')}; "
                                     f"the cache imports features shards of format {shards.FORMAT_VERSION}")
                if fingerprint is not None and meta["fingerprint"] != fingerprint:
                    raise CacheError(f"{path}: features of fingerprint {meta['fingerprint']}, not {fingerprint}")
                for row in shards.iter_rows(path):
                    if row["status"] == "error" or not row["digest"]:
                        counts["error"] += 1
                        continue
                    writer.put_features(row["digest"], meta["fingerprint"], shards.features_of(row), meta["stages"])
                    counts[row["status"]] += 1
                    writer.commit_if_due()
        return counts

    def _put_rows(self, rows: list[tuple], described: dict[str, tuple[str, str]]) -> None:
        with self._write("writing") as db:
            db.executemany(f"INSERT OR REPLACE INTO entries ({_COLUMNS}) VALUES ({', '.join('?' * 15)})", rows)
            db.executemany("INSERT OR IGNORE INTO fingerprints VALUES (?, ?, ?)",
                           [(fp, kind, stages) for fp, (kind, stages) in described.items()])
            stored = db.execute("SELECT coalesce(sum(nbytes), 0) FROM entries").fetchone()[0] \
                if self.max_bytes is not None else 0
        if self.max_bytes is not None and stored > self.max_bytes:
            self.prune(max_bytes=int(self.max_bytes * 0.9))  # least recently used first, with slack

    def stored_bytes(self) -> int:
        """The bytes of all entries (what `max_bytes` caps; the file is a little larger)."""
        with self._lock, self._errors("reading"):
            return self._db().execute("SELECT coalesce(sum(nbytes), 0) FROM entries").fetchone()[0]

    # --- management ----------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Path, entries, size on disk in bytes, the bytes of the entries against the cap
        (`max_bytes`, None: no cap) and, per fingerprint, its kind, entries, bytes and the stage
        configs it stands for."""
        with self._lock, self._errors("reading"):
            per = self._db().execute("SELECT e.fingerprint, e.kind, count(*), sum(e.nbytes), f.stages FROM entries e "
                                   "LEFT JOIN fingerprints f USING (fingerprint) GROUP BY e.fingerprint, e.kind "
                                   "ORDER BY e.kind, e.fingerprint").fetchall()
        size = sum(p.stat().st_size for p in (self.path, *_sidecars(self.path)) if p.exists())
        return {
            "path": str(self.path),
            "entries": sum(n for _, _, n, _, _ in per),
            "size_bytes": size,
            "stored_bytes": sum(b or 0 for _, _, _, b, _ in per),
            "max_bytes": self.max_bytes,
            "used_percent": None if not self.max_bytes else round(100 * sum(b or 0 for _, _, _, b, _ in per)
                                                                   / self.max_bytes, 1),
            "fingerprints": {fp: {"kind": kind, "entries": n, "bytes": b, "stages": stages and json.loads(stages)}
                             for fp, kind, n, b, stages in per},
        }

    def prune(self, older_than_days: float | None = None, fingerprint: str | None = None,
              max_bytes: int | None = None) -> int:
        """Remove entries; returns how many went.

        Entries unused for `older_than_days` and/or of `fingerprint` go (an entry matching
        every filter given); then, while the stored bytes exceed `max_bytes`, the least
        recently used entries go. Without arguments nothing is removed.
        """
        removed = 0
        with self._write("pruning") as db:
            where, args = [], []
            if older_than_days is not None:
                where.append("used < ?")
                args.append(time.time() - older_than_days * 86400)
            if fingerprint is not None:
                where.append("fingerprint = ?")
                args.append(fingerprint)
            if where:
                removed += db.execute(f"DELETE FROM entries WHERE {' AND '.join(where)}", args).rowcount
            if max_bytes is not None:
                excess = (db.execute("SELECT coalesce(sum(nbytes), 0) FROM entries").fetchone()[0]) - max_bytes
                doomed = []
                for rowid, nbytes in db.execute("SELECT rowid, nbytes FROM entries ORDER BY used, rowid").fetchall():
                    if excess <= 0:
                        break
                    doomed.append((rowid,))
                    excess -= nbytes
                db.executemany("DELETE FROM entries WHERE rowid = ?", doomed)
                removed += len(doomed)
            db.execute("DELETE FROM fingerprints WHERE fingerprint NOT IN (SELECT fingerprint FROM entries)")
        if removed:
            self._compact()
        return removed

    def clear(self) -> None:
        """Remove everything: every entry, fingerprint description and recorded file path and
        digest. Freed pages are overwritten with zeros, the file is rebuilt without them
        (VACUUM) and the write-ahead log is emptied, so no stored crop, feature or path is left
        in the file or its side files."""
        with self._lock, self._errors("clearing"):
            db = self._db()
            db.execute("PRAGMA secure_delete=ON")
            try:
                with _transaction(db):
                    tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                       "AND name NOT LIKE 'sqlite_%'").fetchall()]
                    for table in tables:
                        db.execute(f'DELETE FROM "{table}"')
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                db.execute("PRAGMA secure_delete=OFF")

    def verify(self, drop: bool = False) -> list[str]:
        """Keys (``kind:fingerprint:digest``) of entries whose checksum, dtype or shape does
        not match their blobs; `drop` removes them. A damaged file raises `CacheError`."""
        with self._lock, self._errors("verifying"):
            problems = [r[0] for r in self._db().execute("PRAGMA quick_check").fetchall() if r[0] != "ok"]
            if problems:
                raise CacheError(f"{self.path} is damaged ({'; '.join(problems[:3])}). Delete the file or call "
                                 "clear(); it will be filled again.")
            bad, last = [], -1
            while True:
                rows = self._db().execute(f"SELECT rowid, kind, fingerprint, {_READ} FROM entries WHERE rowid > ? "
                                        "ORDER BY rowid LIMIT 256", (last,)).fetchall()
                if not rows:
                    break
                for rowid, kind, fingerprint, *row in rows:
                    last = rowid
                    try:
                        cls, field = _KINDS[kind]
                        _decode(cls, field, kind, fingerprint, row)
                    except (_BadEntry, KeyError):
                        bad.append((rowid, f"{kind}:{fingerprint}:{row[0]}"))
        if drop and bad:
            with self._write("dropping damaged entries") as db:
                db.executemany("DELETE FROM entries WHERE rowid = ?", [(rowid,) for rowid, _ in bad])
            self._compact()
        return [key for _, key in bad]

    def _compact(self) -> None:
        """Give freed pages back to the file system and fold the write-ahead log into the file."""
        with self._lock, self._errors("compacting"):
            self._db().execute("PRAGMA incremental_vacuum")
            self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")


class CacheWriter:
    """Collects entries and writes them in batched transactions (use it as a context manager:
    what is pending is committed on exit). A process killed in between loses only what was
    not committed yet.

    An entry larger than the cache's `max_entry_bytes` is not stored (a warning says so, once).
    `on_error`: None, a failed commit raises `CacheError`; else it is called with the error, the
    pending entries are dropped and the writer stores nothing more (what the pipeline does: the
    cache is an optimisation)."""

    def __init__(self, cache: FeatureCache, max_entries: int = 64, max_seconds: float = 1.0, on_error=None):
        self.cache = cache
        self.max_entries = max_entries
        self.max_seconds = max_seconds
        self.on_error = on_error
        self.failed = False
        self._rows: list[tuple] = []
        self._described: dict[str, tuple[str, str]] = {}
        self._last = time.monotonic()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.commit()

    def put_features(self, digest: str, fingerprint: str, features: FaceFeatures, stages: dict | None = None) -> None:
        self._put("features", digest, fingerprint, features, stages)

    def put_crops(self, digest: str, fingerprint: str, crops: FaceCrops, stages: dict | None = None) -> None:
        self._put("crops", digest, fingerprint, crops, stages)

    def _put(self, kind: str, digest: str, fingerprint: str, record: Record, stages: dict | None) -> None:
        if self.failed:
            return
        size = np.asarray(getattr(record, _KINDS[kind][1])).nbytes + 36 * len(record)
        if size > self.cache.max_entry_bytes:
            self.cache._warn_once(f"large-{kind}", (
                f"{self.cache.path}: the {kind} of an input take {size / 1e6:,.0f} MB, more than one cache entry "
                f"holds ({self.cache.max_entry_bytes / 1e6:,.0f} MB, a quarter of the cache's limit at most): not "
                f"cached (computed again next time); a larger limit ({MAX_BYTES_ENV_VAR}, --cache-max-bytes) "
                "keeps more"))
            return
        self._rows.append(_encode(kind, digest, fingerprint, record))
        if stages is not None:
            self._described[fingerprint] = (kind, json.dumps(stages, sort_keys=True, default=str))

    def commit_if_due(self) -> None:
        """Commit if `max_entries` are pending or `max_seconds` passed since the last commit."""
        if len(self._rows) >= self.max_entries or time.monotonic() - self._last >= self.max_seconds:
            self.commit()

    def commit(self) -> None:
        """Write everything pending in one transaction."""
        rows, described = self._rows, self._described
        self._rows, self._described = [], {}
        self._last = time.monotonic()
        if rows and not self.failed:
            try:
                self.cache._put_rows(rows, described)
            except CacheError as e:
                if self.on_error is None:
                    raise
                self.failed = True
                self.on_error(e)


_ELSEWHERE = (f"Delete or move it, or point the cache elsewhere with DeepfakeDetector(cache=...) or the {ENV_VAR} "
              "environment variable.")


def failure_warning(error: Exception) -> str:
    """The one-line warning of a cache that failed, which the pipeline then goes on without."""
    return (f"{error} Going on without the feature cache ({failure_advice(error)}); results are not affected, "
            "only not kept.")


def is_transient(error: CacheError) -> bool:
    """Whether a `CacheError` comes from the file system or SQLite's locking and I/O (a full disk,
    a lock held too long, an I/O error), not from a file that is no cache at all."""
    cause = error.__cause__
    return isinstance(cause, (sqlite3.OperationalError, OSError)) and "not a database" not in str(cause)


def failure_advice(error: Exception) -> str:
    """What to do about a failed cache read or write, in a few words, from SQLite's error."""
    text = str(error).lower()
    if "full" in text or "no space" in text:
        return (f"the disk is full: free space, lower the cache's limit ({MAX_BYTES_ENV_VAR} or --cache-max-bytes), "
                "or `deepfake-detect cache prune --max-bytes N`")
    if "locked" in text or "busy" in text:
        return "another process held the cache too long"
    if "too big" in text:
        return "an entry is larger than SQLite stores"
    if "malformed" in text or "not a database" in text or "damaged" in text:
        return "the file is damaged: `deepfake-detect cache verify --drop`, or delete it"
    return f"point the cache elsewhere ({ENV_VAR}, --cache) or turn it off (--no-cache)"


def _add_lru_index(conn: sqlite3.Connection) -> None:
    """The (used, nbytes) index that sums and evicts without reading the blobs, added to a cache
    made before it existed; best effort (a read-only or full disk keeps the slower scan)."""
    try:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'entries_lru'").fetchone():
            return
        conn.execute("CREATE INDEX IF NOT EXISTS entries_lru ON entries (used, nbytes)")
    except sqlite3.Error:
        pass


def _file_path(path: str | os.PathLike | None) -> Path:
    if path is None:
        return default_path()
    p = Path(path).expanduser()
    if p.is_dir() or (not p.exists() and not p.suffix):
        return p / FILENAME
    return p


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


@contextmanager
def _transaction(conn: sqlite3.Connection):
    """BEGIN IMMEDIATE (take the write lock first: no deadlock between two writers) … COMMIT."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _select_in(conn: sqlite3.Connection, sql: str, values: list, args: tuple = (), chunk: int = 500) -> list[tuple]:
    """Rows of `sql` whose ``IN ({})`` is filled with `values`, `chunk` at a time."""
    rows: list[tuple] = []
    for start in range(0, len(values), chunk):
        part = values[start:start + chunk]
        rows += conn.execute(sql.format(", ".join("?" * len(part))), (*args, *part)).fetchall()
    return rows


def batched(items: Iterable, n: int) -> Iterator[list]:
    """Lists of `n` consecutive items (the last one shorter), as Python 3.12's itertools.batched."""
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


def _checksum(kind: str, digest: str, fingerprint: str, frames_sampled: int, dtype: str, shape: str,
              blobs: Sequence[bytes]) -> str:
    h = hashlib.blake2b(f"{kind}\0{digest}\0{fingerprint}\0{frames_sampled}\0{dtype}\0{shape}".encode(),
                        digest_size=16)
    for blob in blobs:
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
    return h.hexdigest()


def _encode(kind: str, digest: str, fingerprint: str, record: Record) -> tuple:
    _, field = _KINDS[kind]
    array = np.ascontiguousarray(getattr(record, field))
    if array.dtype.hasobject or array.dtype.fields is not None:
        raise TypeError(f"cannot cache a {field} array of dtype {array.dtype}; give a numeric array")
    if array.ndim < 2 or array.shape[0] != len(record):
        raise ValueError(f"{field} must be (N, ...) with N = {len(record)} frames; got shape {array.shape}")
    blobs = (
        np.ascontiguousarray(record.frame_indices, dtype="<i8").tobytes(),
        np.ascontiguousarray(record.times, dtype="<f8").tobytes(),
        np.ascontiguousarray(record.boxes, dtype="<f4").reshape(-1, 4).tobytes(),
        np.ascontiguousarray(record.scores, dtype="<f4").tobytes(),
        array.tobytes(),
    )
    dtype, shape = array.dtype.str, json.dumps(list(array.shape))
    frames_sampled = int(record.frames_sampled)
    checksum = _checksum(kind, digest, fingerprint, frames_sampled, dtype, shape, blobs)
    now = time.time()
    return (kind, digest, fingerprint, frames_sampled, *blobs, dtype, shape, checksum,
            sum(map(len, blobs)), now, now)


def _decode(cls: type, field: str, kind: str, fingerprint: str, row: Sequence) -> Record:
    digest, frames_sampled, *blobs, dtype, shape, checksum, _ = row
    try:
        dims = json.loads(shape)
        dt = np.dtype(dtype)
    except (TypeError, ValueError) as e:
        raise _BadEntry(f"unreadable dtype or shape: {e}") from e
    if not (isinstance(dims, list) and len(dims) >= 2 and all(isinstance(d, int) and d >= 0 for d in dims)):
        raise _BadEntry(f"bad shape {shape}")
    n = dims[0]
    expected = (8 * n, 8 * n, 16 * n, 4 * n, math.prod(dims) * dt.itemsize)
    if tuple(len(b) for b in blobs) != expected:
        raise _BadEntry("blob sizes do not match the shape")
    if _checksum(kind, digest, fingerprint, frames_sampled, dtype, shape, blobs) != checksum:
        raise _BadEntry("checksum mismatch")
    idx, times, boxes, scores, array = blobs
    return cls(
        frame_indices=np.frombuffer(idx, "<i8").astype(np.int64),
        times=np.frombuffer(times, "<f8").astype(np.float64),
        boxes=np.frombuffer(boxes, "<f4").astype(np.float32).reshape(n, 4),
        scores=np.frombuffer(scores, "<f4").astype(np.float32),
        frames_sampled=int(frames_sampled),
        **{field: np.frombuffer(array, dt).reshape(dims).copy()},
    )
