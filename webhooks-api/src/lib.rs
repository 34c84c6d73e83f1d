//! webhooks-api
