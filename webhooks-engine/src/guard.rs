//! The SSRF guard at delivery time: a resolver that hands the connector only the addresses the
//! [`DestinationPolicy`] allows.
//!
//! The connector connects to what this resolver returns and looks nothing up itself, so the
//! address that was vetted is the address connected to: a name that resolves to a public
//! address when the hook is saved and to an internal one later (DNS rebinding) is refused at
//! the connection. IP-literal hosts never reach a resolver (hyper-util connects to them
//! directly); [`HttpSender`](crate::sender::HttpSender) checks those before sending.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use webhooks_core::destination::{DestinationPolicy, Refused};

/// Why a name gave nothing to connect to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    /// Every address it resolved to is refused (the first is named).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// It did not resolve.
    #[error("dns error: {0}")]
    NotFound(io::Error),
}

/// Resolves with the system's resolver (`getaddrinfo`, on tokio's blocking pool, as hyper-util's
/// default does), then drops the addresses the policy refuses.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<DestinationPolicy>,
}

impl GuardedResolver {
    pub(crate) fn new(policy: Arc<DestinationPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

type Resolving =
    Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, ResolveError>> + Send>>;

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = ResolveError;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str();
            // Port 0: the connector puts the uri's port on whatever is returned.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
                .await
                .map_err(ResolveError::NotFound)?
                .collect();
            allowed(&policy, host, resolved).map(Vec::into_iter)
        })
    }
}

/// The addresses of `host` that may be connected to, or the refusal of the first one when
/// none may.
fn allowed(
    policy: &DestinationPolicy,
    host: &str,
    resolved: Vec<SocketAddr>,
) -> Result<Vec<SocketAddr>, ResolveError> {
    if policy.allows_host(host) {
        return Ok(resolved);
    }
    let mut first_refusal = None;
    let allowed: Vec<SocketAddr> = resolved
        .into_iter()
        .filter(|addr| match policy.check_ip(addr.ip()) {
            Ok(()) => true,
            Err(refused) => {
                first_refusal.get_or_insert(refused);
                false
            }
        })
        .collect();
    match first_refusal {
        Some(refused) if allowed.is_empty() => Err(refused.into()),
        _ if allowed.is_empty() => Err(ResolveError::NotFound(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses",
        ))),
        _ => Ok(allowed),
    }
}

/// The resolver's error somewhere in an error's chain (hyper wraps it), if that is why a
/// request failed: a refusal, or a name that did not resolve.
pub(crate) fn resolve_error_in<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a ResolveError> {
    std::iter::successors(Some(err), |&e| e.source()).find_map(|e| e.downcast_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter()
            .map(|a| SocketAddr::new(a.parse().unwrap(), 0))
            .collect()
    }

    #[test]
    fn refused_addresses_are_dropped_and_the_rest_kept() {
        let policy = DestinationPolicy::default();
        let got = allowed(&policy, "rx.example", addrs(&["10.0.0.1", "8.8.8.8"])).unwrap();
        assert_eq!(got, addrs(&["8.8.8.8"]));
    }

    #[test]
    fn a_name_with_only_refused_addresses_is_refused_naming_the_first() {
        let policy = DestinationPolicy::default();
        let err = allowed(&policy, "evil.example", addrs(&["127.0.0.1", "::1"])).unwrap_err();
        assert_eq!(err.to_string(), "destination not allowed: 127.0.0.1");
        assert!(matches!(
            resolve_error_in(&err),
            Some(ResolveError::Refused(_))
        ));
    }

    #[test]
    fn an_allow_listed_name_keeps_every_address() {
        let policy = DestinationPolicy::allowing(["rx.lan"]).unwrap();
        let got = allowed(&policy, "RX.lan.", addrs(&["10.0.0.1"])).unwrap();
        assert_eq!(got, addrs(&["10.0.0.1"]));
    }
}
