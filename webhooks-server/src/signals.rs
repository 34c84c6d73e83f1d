//! The daemon's signals: the first SIGTERM or SIGINT starts a graceful shutdown; a second one
//! exits at once, for an operator who will not wait for the drain.

/// Completes at the first SIGTERM or SIGINT, and from then on exits the process (status 130)
/// at the next one, saying so.
pub async fn terminate() {
    first_signal().await;
    tracing::info!("signal received: shutting down (a second signal exits at once)");
    tokio::spawn(async {
        first_signal().await;
        tracing::warn!("second signal: exiting now; deliveries in flight are left undone");
        std::process::exit(130);
    });
}

async fn first_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SIGTERM handler not installed; only SIGINT stops");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
