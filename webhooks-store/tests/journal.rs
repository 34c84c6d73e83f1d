//! The delivery journal on a real disk: what is appended comes back after a reopen at its
//! latest state, finished deliveries do not, a torn tail is survived, and old segments are
//! compacted so a long wait cannot pin the log's size.

use std::path::Path;

use webhooks_core::delivery::HttpRequest;
use webhooks_core::pending::{DeliveryJournal, JournalEntry, PendingDelivery};
use webhooks_core::{AccountId, HttpVerb};
use webhooks_store::{FileJournal, JournalConfig};

fn pending(id: u64, body: &str) -> PendingDelivery {
    PendingDelivery {
        id,
        webhook_id: format!("msg_{id:032x}"),
        event_id: "0123456789".into(),
        hook_id: format!("hook{}", id % 3),
        account_id: AccountId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        request: std::sync::Arc::new(HttpRequest {
            method: HttpVerb::Post,
            url: "http://127.0.0.1:9/x".into(),
            headers: vec![("webhook-id".into(), format!("msg_{id:032x}"))],
            body: body.into(),
        }),
        tries: 0,
        due_unix_ms: 0,
    }
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "journal")
        })
        .count()
}

#[tokio::test]
async fn what_is_pending_comes_back_at_its_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    let first = journal.new_ids(3);
    let entries = (first..first + 3)
        .map(|id| JournalEntry::Accepted(pending(id, "a=1")))
        .collect();
    journal.append(entries).await.unwrap();
    journal
        .append(vec![
            JournalEntry::Finished { id: first },
            JournalEntry::Retry {
                id: first + 1,
                tries: 2,
                due_unix_ms: 42,
            },
        ])
        .await
        .unwrap();
    // Not awaited: written with the next commit all the same (the close writes it).
    drop(journal.append(vec![JournalEntry::Finished { id: first + 2 }]));
    journal.close();
    assert!(journal.append(vec![]).await.is_err(), "closed");
    drop(journal);

    let journal = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    assert_eq!(journal.open_report().pending, 1);
    let back = journal.take_recovered();
    let mut want = pending(first + 1, "a=1");
    want.tries = 2;
    want.due_unix_ms = 42;
    assert_eq!(back, vec![want]);
    assert!(journal.take_recovered().is_empty(), "handed out once");
    assert!(journal.new_ids(1) >= first + 3, "ids are never reused");
}

#[tokio::test]
async fn a_torn_tail_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    let id = journal.new_ids(2);
    journal
        .append(vec![JournalEntry::Accepted(pending(id, "kept"))])
        .await
        .unwrap();
    journal
        .append(vec![JournalEntry::Accepted(pending(id + 1, "torn"))])
        .await
        .unwrap();
    drop(journal);
    // A crash in the middle of the second record's write: cut its last bytes.
    let last = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "journal"))
        .max()
        .unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);

    let journal = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    let report = journal.open_report();
    assert_eq!((report.pending, report.torn_segments), (1, 1));
    assert_eq!(journal.take_recovered()[0].request.body, "kept");
    // Ids go on past every record read back.
    assert!(journal.new_ids(1) > id);
}

#[tokio::test]
async fn old_segments_are_deleted_or_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        segment_bytes: 4096,
        kept_segments: 2,
        ..JournalConfig::default()
    };
    let journal = FileJournal::open(dir.path(), config).unwrap();
    let body = "x".repeat(500);
    // A long-waiting delivery in the first segment, then a stream that finishes as it goes.
    let waiting = journal.new_ids(1);
    journal
        .append(vec![JournalEntry::Accepted(pending(
            waiting,
            "waits a day",
        ))])
        .await
        .unwrap();
    for _ in 0..200 {
        let id = journal.new_ids(1);
        journal
            .append(vec![JournalEntry::Accepted(pending(id, &body))])
            .await
            .unwrap();
        journal
            .append(vec![JournalEntry::Finished { id }])
            .await
            .unwrap();
    }
    journal
        .append(vec![JournalEntry::Retry {
            id: waiting,
            tries: 5,
            due_unix_ms: 86_400_000,
        }])
        .await
        .unwrap();
    // About 100 KiB went through 4 KiB segments: only the active one and two more remain.
    assert!(
        segments(dir.path()) <= 4,
        "{} segments",
        segments(dir.path())
    );
    drop(journal);

    let journal = FileJournal::open(dir.path(), config).unwrap();
    let back = journal.take_recovered();
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(
        (
            back[0].id,
            back[0].tries,
            back[0].due_unix_ms,
            back[0].request.body.as_str()
        ),
        (waiting, 5, 86_400_000, "waits a day")
    );
}

#[test]
fn a_second_opener_is_refused_while_the_first_holds_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
    let second = FileJournal::open(dir.path(), JournalConfig::default());
    assert!(
        second
            .as_ref()
            .err()
            .is_some_and(|e| e.0.contains("in use")),
        "{:?}",
        second.err()
    );
    drop(first);
    FileJournal::open(dir.path(), JournalConfig::default()).unwrap();
}
