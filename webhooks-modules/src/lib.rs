//! webhooks-modules
