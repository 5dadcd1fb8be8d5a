"""The schema's history: one ordered list of migrations, each in both dialects, recorded in
``schema_migrations``.

To change the schema, append ONE :class:`Migration` to :data:`MIGRATIONS` (never edit a released one):
``Migration.both(sql)`` when the SQL is the same in SQLite and PostgreSQL, else
``Migration(sqlite=..., postgresql=...)``. Version N is the N-th entry, in either database.

All pending migrations run in one transaction. On PostgreSQL that transaction first takes
``pg_advisory_xact_lock(MIGRATION_LOCK)``, so replicas starting together migrate once: the others wait
for the lock, then find nothing left to do. On SQLite ``BEGIN IMMEDIATE`` serialises the same way.

SQLite databases made before the version table recorded their version in ``PRAGMA user_version``
(5 in the release before PostgreSQL); that number is adopted as the versions applied, and
``user_version`` is kept equal to the newest version, so an older release still refuses a newer file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.store.engine import Database, Dialect

#: The key of the transaction-level advisory lock that migrations take on PostgreSQL ("dcsbot" in hex).
MIGRATION_LOCK = 0x646373626F74


@dataclass(frozen=True)
class Migration:
    sqlite: str
    postgresql: str

    @classmethod
    def both(cls, sql: str) -> Migration:
        return cls(sqlite=sql, postgresql=sql)

    def script(self, dialect: Dialect) -> str:
        return self.sqlite if dialect == "sqlite" else self.postgresql


_REQUESTS = """
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        requester_id TEXT NOT NULL,
        requester_name TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        backup_format TEXT NOT NULL,
        remark TEXT NOT NULL,
        rule TEXT NOT NULL,
        approval TEXT NOT NULL,
        approvers TEXT NOT NULL,
        response_url TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        updated_at TEXT,
        confirmed_by TEXT,
        approved_by TEXT,
        submitted_at TEXT,
        backup_id TEXT,
        error_code TEXT,
        error_msg TEXT,
        message_ts TEXT,
        approval_message_ts TEXT
    );
    CREATE INDEX requests_by_state ON requests (state);
    CREATE INDEX requests_by_backup ON requests (backup_id);
"""

_AUDIT_POSTGRESQL = """
    CREATE TABLE audit (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT,
        channel_id TEXT,
        request_id TEXT,
        instance_id TEXT,
        instance_name TEXT,
        backup_id TEXT,
        rule TEXT,
        outcome TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END;
    $$;
    -- Statement-level: refused even when no row matches; TRUNCATE has no row-level trigger at all.
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
    CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
        FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
"""

MIGRATIONS: list[Migration] = [
    # 1: requests and the append-only audit trail.
    Migration(
        sqlite=_REQUESTS
        + """
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        user_id TEXT,
        channel_id TEXT,
        request_id TEXT,
        instance_id TEXT,
        instance_name TEXT,
        backup_id TEXT,
        rule TEXT,
        outcome TEXT,
        detail TEXT NOT NULL
    );
    CREATE INDEX audit_by_time ON audit (at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
    """,
        postgresql=_REQUESTS + _AUDIT_POSTGRESQL,
    ),
    # 2: following backups, and the watch.
    Migration.both("""
    ALTER TABLE requests ADD COLUMN backup_status TEXT;
    ALTER TABLE requests ADD COLUMN finished_at TEXT;

    CREATE TABLE watch_state (
        channel_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        instance_name TEXT NOT NULL,
        watching_since TEXT NOT NULL,
        stale_since TEXT,
        PRIMARY KEY (channel_id, instance_id)
    );

    CREATE TABLE watch_seen (
        channel_id TEXT NOT NULL,
        backup_id TEXT NOT NULL,
        instance_id TEXT NOT NULL,
        status TEXT NOT NULL,
        announced INTEGER NOT NULL,
        seen_at TEXT NOT NULL,
        PRIMARY KEY (channel_id, backup_id)
    );
    """),
    # 3: the checking state and owed notices.
    Migration.both("""
    ALTER TABLE requests ADD COLUMN sent_at TEXT;
    ALTER TABLE requests ADD COLUMN answer_lost_at TEXT;
    ALTER TABLE requests ADD COLUMN notice_due TEXT;
    ALTER TABLE requests ADD COLUMN notice_refused_since TEXT;
    ALTER TABLE requests ADD COLUMN error_status INTEGER;
    ALTER TABLE requests ADD COLUMN error_hint TEXT;
    ALTER TABLE requests ADD COLUMN error_request_id TEXT;
    CREATE INDEX requests_by_instance ON requests (instance_id, state);
    CREATE INDEX requests_owing_notices ON requests (notice_due) WHERE notice_due IS NOT NULL;
    """),
    # 4: several clouds.
    Migration.both("""
    ALTER TABLE requests ADD COLUMN cloud TEXT;
    ALTER TABLE requests ADD COLUMN instance_tags TEXT;
    """),
    # 5: the audit records the cloud (the last release on SQLite alone).
    Migration.both("""
    ALTER TABLE audit ADD COLUMN cloud TEXT;
    """),
    # 6: at most one unsettled request per instance, enforced by the database. SQLite's single writer
    # already serialises the NOT EXISTS guard of a transition; PostgreSQL under READ COMMITTED does not
    # (two UPDATEs of different rows both pass it), so there a partial unique index is the arbiter.
    # Its states are UNSETTLED_STATES as they were when this was written (a test keeps them equal).
    Migration(
        sqlite="",
        postgresql="""
        CREATE UNIQUE INDEX requests_one_unsettled_per_instance ON requests (instance_id)
            WHERE state IN ('checking', 'submitting');
        """,
    ),
    # 7: Events API deliveries seen, by event id, so that a redelivery to any replica is dropped.
    Migration.both("""
    CREATE TABLE slack_event_deliveries (
        event_id TEXT PRIMARY KEY,
        received_at TEXT NOT NULL
    );
    CREATE INDEX slack_event_deliveries_by_time ON slack_event_deliveries (received_at);
    """),
    # 8: several replicas: the lease on the background work (one row per lease name, its holder, the
    # fencing epoch that grows with every change of holder, and its expiry by the database's clock), and
    # each submission's claim by the replica making it (renewed while that replica lives).
    Migration.both("""
    CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        expires_at TEXT NOT NULL
    );
    ALTER TABLE requests ADD COLUMN claimed_by TEXT;
    ALTER TABLE requests ADD COLUMN claim_until TEXT;
    """),
    # 9: who is looking at their Home tab, across replicas: when they opened it (the flow's clock), when
    # a replica last took their publish (the database's clock: the per-person rate limit all replicas
    # share), and what that publish showed — their user groups and the instances on it, space-separated —
    # so that a replica that never saw them can tell which changes concern them.
    Migration.both("""
    CREATE TABLE home_viewers (
        user_id TEXT PRIMARY KEY,
        opened_at TEXT NOT NULL,
        published_at TEXT,
        user_groups TEXT NOT NULL DEFAULT '',
        shown TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX home_viewers_by_opening ON home_viewers (opened_at);
    """),
    # 10: the picks a "did you mean" answer offered, with the rest of the command typed (format, remark,
    # --dry-run, or list), so that the click on one finishes that command on any replica.
    Migration.both("""
    CREATE TABLE pick_offers (
        user_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        pick TEXT NOT NULL,
        kind TEXT NOT NULL,
        instance TEXT NOT NULL,
        backup_format TEXT,
        remark TEXT,
        dry_run INTEGER NOT NULL,
        offered_at TEXT NOT NULL,
        PRIMARY KEY (user_id, channel_id, pick)
    );
    CREATE INDEX pick_offers_by_time ON pick_offers (offered_at);
    """),
]

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL
    );
"""


async def schema_version(database: Database) -> int:
    """The newest migration applied (0 for an empty database)."""
    return int(await database.fetch_value("SELECT coalesce(max(version), 0) FROM schema_migrations"))


async def migrate(database: Database) -> None:
    """Applies the pending migrations, once, however many processes start at the same moment."""
    async with database.transaction() as transaction:
        if transaction.dialect == "postgresql":
            await transaction.execute("SELECT pg_advisory_xact_lock(:key)", {"key": MIGRATION_LOCK})
        await transaction.execute_script(_VERSION_TABLE)
        version = await schema_version(transaction)
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if version == 0 and transaction.dialect == "sqlite":
            version = await _adopt_user_version(transaction, now)
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"the database schema is version {version}, newer than this bot knows ({len(MIGRATIONS)})"
            )
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            await transaction.execute_script(migration.script(transaction.dialect))
            await _record(transaction, number, now)


async def _adopt_user_version(database: Database, now: str) -> int:
    """A SQLite file of an earlier release: the versions its ``user_version`` says it has, recorded."""
    adopted = int(await database.fetch_value("PRAGMA user_version") or 0)
    for number in range(1, min(adopted, len(MIGRATIONS)) + 1):
        await _record(database, number, now)
    return adopted


async def _record(database: Database, number: int, now: str) -> None:
    await database.execute(
        "INSERT INTO schema_migrations (version, applied_at) VALUES (:version, :now)",
        {"version": number, "now": now},
    )
    if database.dialect == "sqlite":
        await database.execute(f"PRAGMA user_version = {number}")
