//! Request rate limits: per destination (`EngineConfig::destination_rate_limit`, the daemon's
//! `--destination-rate-limit`) and per hook (its `rate_limit` field), with governor's GCRA.
//!
//! A delivery over a limit waits for its turn; it is never dropped and the wait is not a
//! failure. It waits in its own send task, holding one of its destination's in-flight slots,
//! so a limited destination slows only itself: other destinations' lanes go on. Retries pass
//! through the same send path, so they obey the same limits. A limit allows a burst of its
//! own size (N requests at once, then N a second).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use webhooks_core::Hook;

/// The limiters of one engine.
pub(crate) struct RateLimits {
    per_destination: Option<DefaultKeyedRateLimiter<Arc<str>>>,
    /// One limiter per limited hook, made when its first delivery comes; replaced when the
    /// hook's limit changes.
    per_hook: Mutex<HashMap<String, (NonZeroU32, Arc<DefaultDirectRateLimiter>)>>,
}

impl RateLimits {
    pub(crate) fn new(per_destination: Option<NonZeroU32>) -> Self {
        RateLimits {
            per_destination: per_destination.map(|n| RateLimiter::keyed(Quota::per_second(n))),
            per_hook: Mutex::default(),
        }
    }

    /// Whether any limit could apply to this delivery (no waiting and no lock otherwise).
    pub(crate) fn applies(&self, hook: &Hook) -> bool {
        self.per_destination.is_some() || hook.rate_limit.is_some()
    }

    /// Waits until both the destination's and the hook's limits let one more request through.
    pub(crate) async fn until_ready(&self, destination: &Arc<str>, hook: &Hook) {
        if let Some(limiter) = &self.per_destination {
            limiter.until_key_ready(destination).await;
        }
        if let Some(limit) = hook.rate_limit {
            self.hook_limiter(&hook.id, limit).until_ready().await;
        }
    }

    fn hook_limiter(&self, hook: &str, limit: NonZeroU32) -> Arc<DefaultDirectRateLimiter> {
        let mut hooks = self.per_hook.lock().unwrap_or_else(PoisonError::into_inner);
        match hooks.get(hook) {
            Some((current, limiter)) if *current == limit => Arc::clone(limiter),
            _ => {
                let limiter = Arc::new(RateLimiter::direct(Quota::per_second(limit)));
                hooks.insert(hook.to_owned(), (limit, Arc::clone(&limiter)));
                limiter
            }
        }
    }
}
