//! webhooks-store
