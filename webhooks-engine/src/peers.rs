//! The other nodes on the same store and broker. Each node tells them about its failed tries,
//! so the failure threshold means the same whether one node or ten do the work (KAZOO counts
//! per node). The transport does the telling; until one is attached there is nobody to tell.

use arc_swap::ArcSwapOption;
use webhooks_core::transport::{FailedTry, FailureShare, FlushedFailures};
use webhooks_core::AccountId;

#[derive(Default)]
pub(crate) struct Peers {
    share: ArcSwapOption<Box<dyn FailureShare>>,
}

impl Peers {
    pub(crate) fn attach(&self, share: Box<dyn FailureShare>) {
        self.share.store(Some(std::sync::Arc::new(share)));
    }

    /// Tells the other nodes about a failed try; never waits.
    pub(crate) fn failed(&self, account: &AccountId, hook: &str, at_ms: i64) {
        if let Some(share) = self.share.load().as_ref() {
            share.share(FailedTry {
                account: account.clone(),
                hook: hook.to_owned(),
                at_ms,
            });
        }
    }

    /// Tells the other nodes that an operator flushed failure counts here.
    pub(crate) fn flushed(&self, account: &AccountId, hook: Option<&str>) {
        if let Some(share) = self.share.load().as_ref() {
            share.flushed(FlushedFailures {
                account: account.clone(),
                hook: hook.map(str::to_owned),
            });
        }
    }
}
