//! The store contract as a test suite: every behaviour the traits of
//! [`webhooks_core::store`] promise, written once against [`Store`](webhooks_core::Store), so
//! that every backend is held to the same rules. A backend runs all of it with one line in a
//! test file:
//!
//! ```ignore
//! webhooks_store::store_contract_tests!(EmbeddedStore::open_in_memory().unwrap());
//! ```
//!
//! [`store_contract_tests!`](crate::store_contract_tests) expands into one `#[tokio::test]`
//! per case, each calling the case with a fresh store built by the expression given (it is
//! evaluated inside the async test, so it may `.await`). The invoking crate needs `tokio` with
//! its `macros` and `rt-multi-thread` features among its (dev-)dependencies.
//!
//! Cases treat feed positions and attempt cursors as opaque: they keep them, hand them back and
//! compare them for equality, never read them. Behaviour only one backend has (a file that
//! survives `kill -9`, two processes on one file, schema migrations) is tested beside that
//! backend, not here.

pub mod attempts;
pub mod auth_keys;
pub mod definitions;
pub mod docs;
pub mod feed;
pub mod fixtures;

/// Expands into one `#[tokio::test]` per contract case, each run against a fresh store made by
/// evaluating the given expression (inside the test's async body). See [`crate::contract`].
///
/// Every `pub async fn` of the case modules must be listed here (a unit test checks it); the
/// list is the only place a case is registered.
#[macro_export]
macro_rules! store_contract_tests {
    ($make_store:expr) => {
        $crate::store_contract_tests!(@cases $make_store;
            docs: [
                create_without_id_assigns_hex_id_and_first_revision,
                update_with_stored_rev_bumps_generation,
                creating_an_existing_id_conflicts,
                stale_rev_conflicts_and_leaves_the_document_untouched,
                updating_a_missing_document_conflicts,
                non_string_id_is_refused,
                concurrent_updates_from_one_revision_let_exactly_one_win,
                account_is_found_by_its_current_api_key,
                accounts_lists_every_account,
                hook_listings_exclude_soft_deleted_and_sort_by_id,
                undeleting_a_hook_lists_it_again,
                delete_hook_removes_it_for_good,
                delete_account_removes_its_hooks_and_config_but_not_others,
                delete_account_removes_its_attempts_and_its_id_is_never_reused,
                delete_of_missing_account_is_not_found_but_still_removes_orphan_hooks,
                system_config_follows_the_revision_rule,
                account_config_is_per_account_and_category,
            ],
            feed: [
                an_empty_store_has_no_changes_and_stays_at_the_beginning,
                saves_updates_and_soft_deletes_appear_in_write_order_at_their_latest_version,
                a_follower_sees_only_what_was_written_after_its_position,
                a_conflicting_save_is_not_a_change,
                a_position_kept_as_text_resumes_the_feed,
                a_position_the_store_did_not_make_is_refused,
                paging_with_small_limits_covers_every_hook_exactly_once,
                a_follower_applying_pages_between_writes_converges_on_the_store,
                hard_deletes_appear_as_tombstones_naming_the_account,
                hooks_of_a_missing_account_are_still_buried,
                a_recreated_hook_replaces_its_tombstone,
            ],
            attempts: [
                attempts_list_newest_first_unless_ascending,
                attempts_are_returned_as_stored,
                cursor_paging_visits_every_attempt_exactly_once,
                next_is_none_exactly_when_nothing_remains,
                hook_filter_and_time_range_narrow_the_listing,
                other_accounts_attempts_are_invisible,
                prune_deletes_only_older_attempts_and_counts_them,
                an_unkeyable_attempt_fails_the_whole_batch,
                a_cursor_survives_pruning_of_the_rows_before_it,
                a_cursor_kept_as_text_resumes_the_listing,
                a_cursor_the_store_did_not_make_is_refused,
            ],
            auth_keys: [
                an_unknown_key_id_has_no_key,
                a_saved_key_is_read_back_byte_for_byte,
                saving_under_a_used_id_replaces_the_key,
                keys_are_kept_per_id,
            ],
            definitions: [
                definitions_need_a_master_account,
                a_definition_is_saved_read_listed_and_deleted,
                a_deleted_definition_is_created_again,
                a_stale_definition_revision_conflicts,
                only_webhooks_ids_are_definitions,
            ],
        );
    };
    (@cases $make_store:expr; $($module:ident: [$($case:ident),* $(,)?]),* $(,)?) => {
        $($(
            // Two workers, so that cases racing writers (concurrent saves) really overlap.
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::contract::$module::$case($make_store).await;
            }
        )*)*
    };
}

#[cfg(test)]
mod tests {
    /// (module, case) for every `pub async fn` in a case module's source.
    fn defined_cases() -> Vec<(&'static str, String)> {
        let sources = [
            ("docs", include_str!("contract/docs.rs")),
            ("feed", include_str!("contract/feed.rs")),
            ("attempts", include_str!("contract/attempts.rs")),
            ("auth_keys", include_str!("contract/auth_keys.rs")),
            ("definitions", include_str!("contract/definitions.rs")),
        ];
        let mut cases = Vec::new();
        for (module, source) in sources {
            for rest in source.split("pub async fn ").skip(1) {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                cases.push((module, name));
            }
        }
        cases.sort();
        cases
    }

    /// (module, case) for every case the macro lists.
    fn registered_cases() -> Vec<(&'static str, String)> {
        let source = include_str!("contract.rs");
        let start = source.find("@cases $make_store;").unwrap();
        let list = &source[start..source[start..].find(");").unwrap() + start];
        let mut cases = Vec::new();
        for module in ["docs", "feed", "attempts", "auth_keys", "definitions"] {
            let from = list.find(&format!("{module}: [")).unwrap();
            let body = &list[from..from + list[from..].find(']').unwrap()];
            let names = body.split_once('[').unwrap().1.split(',');
            cases.extend(
                names
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| (module, n.to_owned())),
            );
        }
        cases.sort();
        cases
    }

    /// A case written but not listed in the macro would never run against any backend.
    #[test]
    fn the_macro_runs_every_case() {
        assert_eq!(registered_cases(), defined_cases());
    }
}
