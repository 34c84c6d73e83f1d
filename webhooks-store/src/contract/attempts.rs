//! Delivery attempts: listing order, filters, paging by opaque cursor, pruning.

use serde_json::json;
use webhooks_core::store::{AttemptCursor, AttemptQuery, StoreError};
use webhooks_core::{Doc, Store};

use super::fixtures::{account_id, all_pages, attempt, doc, expected, ns, query, seed_attempts};

pub async fn attempts_list_newest_first_unless_ascending<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let a = account_id(1);

    let page = store.attempts(query(&a)).await.unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, false, |_, _| true));
    assert_eq!(page.next, None);

    let page = store
        .attempts(AttemptQuery {
            ascending: true,
            ..query(&a)
        })
        .await
        .unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, true, |_, _| true));
}

/// Every field a caller gave comes back untouched. A store may add only its bookkeeping:
/// `_id` (32 hex when the attempt had none, kept when it had one), `_rev`, and
/// `pvt_account_db` (KAZOO's CouchDB layout names the monthly database there).
pub async fn attempts_are_returned_as_stored<S: Store>(store: S) {
    let a = account_id(1);
    let given = attempt(&a, "h1", 5, 0);
    let mut named = attempt(&a, "h1", 6, 1);
    named.set("_id", "my-attempt");
    store
        .save_attempts(vec![given.clone(), named.clone()].into())
        .await
        .unwrap();
    let page = store.attempts(query(&a)).await.unwrap();
    assert_eq!(page.attempts.len(), 2);
    let (back_named, back_given) = (&page.attempts[0], &page.attempts[1]);
    assert_eq!(back_named.id(), Some("my-attempt"));
    if let Some(id) = back_given.get("_id") {
        assert!(webhooks_core::ids::is_hex32(id.as_str().unwrap()), "{id}");
    }
    let without_bookkeeping = |d: &Doc, keep_id: bool| {
        let mut d = d.clone();
        for key in ["_id", "_rev", "pvt_account_db"] {
            if !(keep_id && key == "_id") {
                d.remove(key);
            }
        }
        d
    };
    assert_eq!(without_bookkeeping(back_given, false), given);
    assert_eq!(without_bookkeeping(back_named, true), named);
}

pub async fn cursor_paging_visits_every_attempt_exactly_once<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let a = account_id(1);
    for ascending in [false, true] {
        let want = expected(&rows, ascending, |_, _| true);
        for limit in [1, 4, 7, 59, 60, 61] {
            let pages = all_pages(
                &store,
                AttemptQuery {
                    ascending,
                    limit,
                    ..query(&a)
                },
            )
            .await;
            // Every page but the last is full, and the last is not empty.
            let (last, full) = pages.split_last().unwrap();
            assert!(full.iter().all(|p| p.len() == limit), "limit {limit}");
            assert!(!last.is_empty() || pages.len() == 1, "limit {limit}");
            assert_eq!(pages.concat(), want, "ascending {ascending} limit {limit}");
        }
    }
}

pub async fn next_is_none_exactly_when_nothing_remains<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let q = AttemptQuery {
        limit: 60,
        ..query(&account_id(1))
    };
    assert_eq!(store.attempts(q.clone()).await.unwrap().next, None);
    let page = store
        .attempts(AttemptQuery {
            limit: 59,
            ..q.clone()
        })
        .await
        .unwrap();
    let next = page.next.expect("one attempt remains");
    // The cursor names the oldest attempt, the one the page stopped before.
    let rest = store
        .attempts(AttemptQuery {
            start: Some(next),
            ..q
        })
        .await
        .unwrap();
    let oldest = expected(&rows, true, |_, _| true)[0];
    assert_eq!(ns(&rest.attempts), [oldest]);
    assert_eq!(rest.attempts[0].i64("pvt_created"), Some(1000));
    assert_eq!(rest.next, None);
}

pub async fn hook_filter_and_time_range_narrow_the_listing<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let a = account_id(1);

    let q = AttemptQuery {
        hook: Some("h2".into()),
        created_from: 1002,
        created_to: 1004,
        ..query(&a)
    };
    let want = expected(&rows, false, |c, h| h == "h2" && (1002..=1004).contains(&c));
    assert!(!want.is_empty());
    let page = store.attempts(q.clone()).await.unwrap();
    assert_eq!(ns(&page.attempts), want);

    let pages = all_pages(&store, AttemptQuery { limit: 3, ..q }).await;
    assert_eq!(pages.concat(), want);

    let only_edge = store
        .attempts(AttemptQuery {
            created_from: 1006,
            created_to: 1006,
            ..query(&a)
        })
        .await
        .unwrap();
    assert_eq!(
        ns(&only_edge.attempts),
        expected(&rows, false, |c, _| c == 1006)
    );
}

pub async fn other_accounts_attempts_are_invisible<S: Store>(store: S) {
    seed_attempts(&store).await;
    let page = store.attempts(query(&account_id(2))).await.unwrap();
    assert_eq!(ns(&page.attempts), [999, 999, 999]);
    assert!(store
        .attempts(query(&account_id(3)))
        .await
        .unwrap()
        .attempts
        .is_empty());
}

pub async fn prune_deletes_only_older_attempts_and_counts_them<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let older = rows.iter().filter(|r| r.1 < 1003).count() as u64;
    // Account 2's three attempts are at 1003 and stay.
    assert_eq!(store.prune_attempts(1003).await.unwrap(), older);
    let page = store.attempts(query(&account_id(1))).await.unwrap();
    assert_eq!(ns(&page.attempts), expected(&rows, false, |c, _| c >= 1003));
    assert_eq!(store.prune_attempts(1003).await.unwrap(), 0);
}

pub async fn an_unkeyable_attempt_fails_the_whole_batch<S: Store>(store: S) {
    let a = account_id(1);
    let bad = doc(json!({"pvt_account_id": a.as_str(), "hook_id": "h1"}));
    let r = store
        .save_attempts(vec![attempt(&a, "h1", 1, 0), bad].into())
        .await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert!(store.attempts(query(&a)).await.unwrap().attempts.is_empty());
}

pub async fn a_cursor_survives_pruning_of_the_rows_before_it<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let a = account_id(1);
    let q = AttemptQuery {
        ascending: true,
        limit: 10,
        ..query(&a)
    };
    let first = store.attempts(q.clone()).await.unwrap();
    store.prune_attempts(1001).await.unwrap();
    let rest = all_pages(
        &store,
        AttemptQuery {
            start: first.next,
            ..q
        },
    )
    .await;
    let mut seen = ns(&first.attempts);
    seen.extend(rest.concat());
    assert_eq!(seen, expected(&rows, true, |_, _| true));
}

/// Crossbar's use: the cursor goes to a client as `next_start_key` text and comes back as
/// `start_key`; rebuilt from that text it resumes the listing as the original would.
pub async fn a_cursor_kept_as_text_resumes_the_listing<S: Store>(store: S) {
    let rows = seed_attempts(&store).await;
    let q = AttemptQuery {
        limit: 7,
        ..query(&account_id(1))
    };
    let first = store.attempts(q.clone()).await.unwrap();
    let next = first.next.expect("more than one page");
    let rebuilt = AttemptCursor::new(next.as_str().to_owned());
    assert_eq!(rebuilt, next);
    let resume = |start: AttemptCursor| {
        store.attempts(AttemptQuery {
            start: Some(start),
            ..q.clone()
        })
    };
    let second = resume(rebuilt).await.unwrap();
    assert_eq!(second, resume(next).await.unwrap());
    let mut seen = ns(&first.attempts);
    seen.extend(ns(&second.attempts));
    assert_eq!(seen, expected(&rows, false, |_, _| true)[..14]);
}

pub async fn a_cursor_the_store_did_not_make_is_refused<S: Store>(store: S) {
    seed_attempts(&store).await;
    let forged = AttemptCursor::new("not a cursor");
    let r = store
        .attempts(AttemptQuery {
            start: Some(forged.clone()),
            ..query(&account_id(1))
        })
        .await;
    match r {
        Err(StoreError::BadPosition(text)) => assert_eq!(text, forged.as_str()),
        other => panic!("expected BadPosition, got {other:?}"),
    }
}
