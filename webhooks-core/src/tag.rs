//! Event tags: how the hook table matches an event to hooks without comparing names.
//!
//! A tag is the event name's 64-bit hash with the two low bits cleared, so the table can keep
//! two flags in the same word. Matching compares tags, never names. That is exact for the names
//! matching is ever asked about, registered module ids, because `ModuleRegistry::register`
//! refuses a module whose tag another's already has; hooks for unknown events never enter the
//! table. The seed is fixed: tags must be the same in every snapshot and process.

use std::hash::BuildHasher;

/// The low bits a tag leaves free for the table's flags.
pub(crate) const FLAG_BITS: u64 = 0b11;

/// The tag of an event name.
pub(crate) fn event_tag(name: &str) -> u64 {
    foldhash::fast::FixedState::with_seed(0x006b_617a_6f6f).hash_one(name) & !FLAG_BITS
}
