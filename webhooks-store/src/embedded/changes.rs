//! The hook change feed behind [`HookStore::hook_changes`]: how a daemon notices hooks the CLI
//! (another process) wrote into the same file.
//!
//! Every hook write takes the next position from `hook_clock` and stamps it on what it wrote:
//! a save on the hook's row (`hooks.seq`), a hard delete on a tombstone row (`hook_tombstones`)
//! that remembers the id and account. The feed is then one ordered range scan over both tables
//! by position.
//!
//! Why a position per hook rather than a log with a row per write:
//! - It is CouchDB's `_changes` exactly: each document once, at its latest revision. A log
//!   would need a `GROUP BY` over every write since `since` to get there.
//! - From 0 it lists every stored hook, so a follower can start from the feed alone. A log has
//!   to be pruned, and once it is, 0 no longer reaches hooks last written long ago; a follower
//!   would have to load [`all_hooks`] and learn the current position in one snapshot, which the
//!   trait cannot express.
//! - It is bounded by the data: one position per stored hook. Only tombstones outlive their
//!   hook, and they are kept for [`TOMBSTONE_WINDOW`] writes (see there).
//!
//! Positions only grow and never come back, because writers are serialised: every write is a
//! `BEGIN IMMEDIATE` transaction, across processes too, so positions are taken in commit order.
//! A reader that sees position `n` therefore already sees every position below `n`, and a
//! follower that continues from `n` cannot miss a write committed later.
//!
//! Callers see a position as an opaque [`FeedPosition`] spelt `seq-<n>` ([`position`]), not as
//! `n`: CouchDB's positions are opaque strings, and a caller that counted on numbers would
//! pass every test against this store and fail against CouchDB. With the prefix it fails here.
//!
//! [`HookStore::hook_changes`]: webhooks_core::store::HookStore::hook_changes
//! [`all_hooks`]: webhooks_core::store::HookStore::all_hooks

use rusqlite::{params, Connection, Transaction};
use webhooks_core::store::{FeedPosition, HookChanges, StoreError};
use webhooks_core::Doc;

use super::{decode, Fault};

/// How many hook writes a tombstone survives. A follower polling about once a second is never
/// this far behind (every write is an fsynced transaction, a few thousand a second at best),
/// and hard deletes are rare (the API soft-deletes; only account deletion and `delete_hook`
/// remove rows), so in practice no tombstone a follower needs is pruned. The bound is what
/// keeps the table small however many hooks are created and deleted over the years: positions
/// are unique, so at most this many tombstones exist.
pub(super) const TOMBSTONE_WINDOW: i64 = 100_000;

/// Both tables in position order. `UNION ALL` of two index range scans merged by position: the
/// planner reads only as far as `LIMIT`, never sorting.
const FEED: &str = "
    SELECT seq, id, account_id, doc FROM hooks WHERE seq > ?1
    UNION ALL
    SELECT seq, hook_id, account_id, NULL FROM hook_tombstones WHERE seq > ?1
    ORDER BY seq LIMIT ?2";

/// The next position. Taken inside the write transaction that uses it: no reader sees the
/// position before the write holding it commits, and a rolled-back write hands it back unseen.
pub(super) fn next_seq(tx: &Transaction<'_>) -> Result<i64, Fault> {
    Ok(tx.query_row(
        "UPDATE hook_clock SET seq = seq + 1 WHERE id = 1 RETURNING seq",
        [],
        |row| row.get(0),
    )?)
}

/// A saved hook's row carries its position now, so a tombstone from an earlier life of the id
/// would list it twice.
pub(super) fn revive(tx: &Transaction<'_>, hook_id: &str) -> Result<(), Fault> {
    tx.execute("DELETE FROM hook_tombstones WHERE hook_id = ?1", [hook_id])?;
    Ok(())
}

/// Records the hard deletion of `hooks` (id, account), one position each, so that paging with a
/// small limit can stop between them. Call it in the transaction that deleted the rows.
pub(super) fn bury(tx: &Transaction<'_>, hooks: &[(String, Option<String>)]) -> Result<(), Fault> {
    if hooks.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare(
        "INSERT INTO hook_tombstones (hook_id, account_id, seq) VALUES (?1, ?2, ?3)
         ON CONFLICT (hook_id) DO UPDATE SET account_id = excluded.account_id, seq = excluded.seq",
    )?;
    let mut seq = 0;
    for (id, account) in hooks {
        seq = next_seq(tx)?;
        insert.execute(params![id, account, seq])?;
    }
    prune(tx, seq, TOMBSTONE_WINDOW)
}

/// Drops tombstones `window` or more positions behind `newest`: a range delete on the position
/// index, cheap enough to run with every hard delete.
fn prune(tx: &Transaction<'_>, newest: i64, window: i64) -> Result<(), Fault> {
    tx.execute(
        "DELETE FROM hook_tombstones WHERE seq <= ?1",
        [newest.saturating_sub(window)],
    )?;
    Ok(())
}

/// One page of the feed. One statement, so one read snapshot: the docs and `last` agree even
/// while another process writes.
pub(super) fn list(
    conn: &Connection,
    since: FeedPosition,
    limit: usize,
) -> Result<HookChanges, Fault> {
    let from = seq_of(&since)?;
    let mut docs = Vec::with_capacity(limit.min(1024));
    let mut last = None;
    let mut stmt = conn.prepare(FEED)?;
    let mut rows = stmt.query(params![from, i64::try_from(limit).unwrap_or(i64::MAX)])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let id: String = row.get(1)?;
        let account: Option<String> = row.get(2)?;
        let json: Option<String> = row.get(3)?;
        docs.push(match json {
            Some(json) => decode("hooks", &id, &json)?,
            None => Doc::tombstone(&id, account.as_deref()),
        });
        last = Some(seq);
    }
    // An empty page hands `since` back as it came, the beginning included.
    let last = last.map_or(since, position);
    Ok(HookChanges { docs, last })
}

/// How this store spells position `seq` for callers.
fn position(seq: i64) -> FeedPosition {
    FeedPosition::new(format!("seq-{seq}"))
}

/// The position behind `since`: 0 for the beginning, else the `n` of a `seq-<n>` this store
/// made. Anything else is refused, a bare number included, and so is a spelling of `n` that
/// [`position`] would not produce (`seq-+5`, `seq-05`): each position has one text, so
/// callers may compare positions by it.
fn seq_of(since: &FeedPosition) -> Result<i64, Fault> {
    if since.is_beginning() {
        return Ok(0);
    }
    since
        .as_str()
        .strip_prefix("seq-")
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|&seq| seq > 0 && position(seq) == *since)
        .ok_or_else(|| StoreError::BadPosition(since.as_str().to_owned()).into())
}

/// What a follower needs to forget a hard-deleted hook: its id, its account (when it had one)
/// and `pvt_deleted`, which followers already treat as gone.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::schema;
    use rusqlite::OptionalExtension;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate(&mut conn).unwrap();
        conn
    }

    /// The feed must walk both position indexes and merge them: a plan that sorts would read
    /// every change since `since` on every poll.
    #[test]
    fn feed_merges_two_index_scans_without_sorting() {
        let conn = db();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {FEED}")).unwrap();
        let mut rows = stmt.query(params![0, 10]).unwrap();
        let mut plan = String::new();
        while let Some(row) = rows.next().unwrap() {
            plan.push_str(&row.get::<_, String>(3).unwrap());
            plan.push('\n');
        }
        assert!(plan.contains("MERGE (UNION ALL)"), "{plan}");
        assert!(plan.contains("hooks_by_seq"), "{plan}");
        assert!(plan.contains("sqlite_autoindex_hook_tombstones"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    /// The position of `hook_id`'s tombstone, if one is kept.
    fn tombstone_seq(conn: &Connection, hook_id: &str) -> Result<Option<i64>, Fault> {
        Ok(conn
            .query_row(
                "SELECT seq FROM hook_tombstones WHERE hook_id = ?1",
                [hook_id],
                |row| row.get(0),
            )
            .optional()?)
    }

    #[test]
    fn tombstones_older_than_the_window_are_pruned() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        let ids: Vec<(String, Option<String>)> = (0..5)
            .map(|n| (format!("h{n}"), Some("a".into())))
            .collect();
        for hook in &ids {
            let mut insert = tx
                .prepare(
                    "INSERT INTO hook_tombstones (hook_id, account_id, seq) VALUES (?1, ?2, ?3)",
                )
                .unwrap();
            insert
                .execute(params![hook.0, hook.1, next_seq(&tx).unwrap()])
                .unwrap();
        }
        // Positions 1..=5; a window of 2 behind 5 keeps 4 and 5.
        prune(&tx, 5, 2).unwrap();
        let kept: Vec<Option<i64>> = ids
            .iter()
            .map(|(id, _)| tombstone_seq(&tx, id).unwrap())
            .collect();
        assert_eq!(kept, [None, None, None, Some(4), Some(5)]);
    }

    #[test]
    fn a_position_reads_back_as_the_seq_it_was_made_from() {
        for seq in [1, 42, i64::MAX] {
            assert_eq!(seq_of(&position(seq)).unwrap(), seq);
        }
        assert_eq!(seq_of(&FeedPosition::beginning()).unwrap(), 0);
    }

    #[test]
    fn a_position_this_store_did_not_spell_is_refused() {
        for text in [
            "42", "seq-", "seq-0", "seq--1", "seq-+5", "seq-05", "seq-1x", "SEQ-1",
        ] {
            assert!(
                matches!(
                    seq_of(&FeedPosition::new(text)),
                    Err(Fault::Store(StoreError::BadPosition(t))) if t == text
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn bury_gives_each_hook_its_own_position() {
        let mut conn = db();
        let tx = conn.transaction().unwrap();
        bury(&tx, &[("x".into(), None), ("y".into(), Some("a".into()))]).unwrap();
        assert_eq!(tombstone_seq(&tx, "x").unwrap(), Some(1));
        assert_eq!(tombstone_seq(&tx, "y").unwrap(), Some(2));
        assert_eq!(next_seq(&tx).unwrap(), 3);
    }
}
