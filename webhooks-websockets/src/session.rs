//! One socket's message pipeline, in blackhole's order (spec §4.2): rate → authenticate →
//! validate → authorise → limits → command, the first failing stage giving the error reply.
//! Every message gets exactly one reply.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{json, Map, Value};
use webhooks_api::{ApiState, Auth};

use crate::bindings;
use crate::hub::{Hub, Socket};
use crate::protocol::{error_reply, parse, success_reply, Action, Message};

/// Blackhole's command-stage error for a binding no module serves.
const NO_SUBSCRIPTIONS: &str = "no available subscriptions to requested binding";

pub(crate) struct Session {
    hub: Hub,
    api: ApiState,
    socket: Arc<Socket>,
    limiter: DefaultDirectRateLimiter,
    /// The caller, once a token authenticated the socket (KAZOO: the first valid token wins
    /// for the socket's whole life; later tokens are not read).
    auth: Mutex<Option<Auth>>,
}

impl Session {
    pub(crate) fn new(hub: Hub, api: ApiState, socket: Arc<Socket>) -> Session {
        let c = hub.config();
        let one = NonZeroU32::MIN;
        let quota = Quota::per_second(NonZeroU32::new(c.tokens_fill_rate).unwrap_or(one))
            .allow_burst(NonZeroU32::new(c.max_bucket_tokens).unwrap_or(one));
        Session {
            limiter: RateLimiter::direct(quota),
            hub,
            api,
            socket,
            auth: Mutex::new(None),
        }
    }

    /// The reply to one text frame.
    pub(crate) async fn handle(&self, text: &str) -> String {
        let message = match parse(text) {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        let id = message.request_id.clone();
        match self.run(message).await {
            Ok(data) => success_reply(&id, data),
            Err(why) => error_reply(&id, &why),
        }
    }

    async fn run(&self, m: Message) -> Result<Value, String> {
        if self.limiter.check().is_err() {
            self.hub.count_rate_limited();
            return Err(format!(
                "rate limiting threshold hit for {}!",
                self.socket.id
            ));
        }
        let auth = self.authenticate(m.auth_token.as_deref()).await?;
        let data = match &m.action {
            Action::Subscribe => self.subscribe(&auth, m.data.as_ref()).await?,
            Action::Unsubscribe => self.unsubscribe(m.data.as_ref())?,
            Action::Ping => json!({"response": "pong"}),
            // KAZOO echoes whatever the last command left behind (bug B10).
            Action::Other(_) => json!({}),
        };
        self.hub.label(&self.socket, m.name, m.metadata);
        Ok(data)
    }

    /// The socket's caller: known already, or read from this message's token. The error does
    /// not echo the token (KAZOO's does, bug B13); Monster UI only reads the prefix.
    async fn authenticate(&self, token: Option<&str>) -> Result<Auth, String> {
        if let Some(auth) = self.auth.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Ok(auth);
        }
        let token = token.ok_or("authentication token required")?;
        let auth = Auth::from_token(&self.api, token.to_owned())
            .await
            .map_err(|_| "failed to authenticate token".to_owned())?;
        self.hub
            .authenticate(&self.socket, auth.account.id.clone())?;
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth.clone());
        Ok(auth)
    }

    async fn subscribe(
        &self,
        auth: &Auth,
        data: Option<&Map<String, Value>>,
    ) -> Result<Value, String> {
        let (account, binding) = required(data)?;
        let now = webhooks_core::time::now_unix();
        let subscription = bindings::subscribe(account, binding, now);
        // A binding no module serves is refused at blackhole's command stage, after the
        // account is authorised; every other refusal is validation, before it.
        if let Err(e) = &subscription {
            if e != NO_SUBSCRIPTIONS {
                return Err(e.clone());
            }
        }
        self.authorize(auth, account).await?;
        let subscribed = self.hub.subscribe(&self.socket, subscription?)?;
        Ok(json!({ "subscribed": subscribed }))
    }

    /// Needs no authorisation: a socket releases only what it holds itself (KAZOO's
    /// unsubscribe could cut other sockets off, bug B1).
    fn unsubscribe(&self, data: Option<&Map<String, Value>>) -> Result<Value, String> {
        let (account, binding) = required(data)?;
        bindings::subscribe(account, binding, webhooks_core::time::now_unix())?;
        let subscribed = self.hub.unsubscribe(&self.socket, binding);
        Ok(json!({ "unsubscribed": [binding], "subscribed": subscribed }))
    }

    /// Spec §6: `*` for super-duper admins only; otherwise the caller's own account or one
    /// below it (the REST API's account-tree rule).
    async fn authorize(&self, auth: &Auth, account: &str) -> Result<(), String> {
        if account == "*" {
            return match auth.account.superduper_admin {
                true => Ok(()),
                false => Err("unauthorized wildcard account id".into()),
            };
        }
        auth.account(&self.api, account)
            .await
            .map(drop)
            .map_err(|_| "unauthorized account id".into())
    }
}

/// `data.account_id` and `data.binding`, with blackhole's errors when missing. KAZOO's socket
/// crashes on a binding that is not a string (§2); here it is an error reply.
fn required(data: Option<&Map<String, Value>>) -> Result<(&str, &str), String> {
    let data = data
        .filter(|d| !d.is_empty())
        .ok_or("missing required keys in data object")?;
    let missing: Vec<&str> = ["account_id", "binding"]
        .into_iter()
        .filter(|k| !data.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing required keys : {}", missing.join(", ")));
    }
    let text = |key: &str| {
        data[key]
            .as_str()
            .ok_or_else(|| format!("{key} must be a string"))
    };
    Ok((text("account_id")?, text("binding")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_named_as_blackhole_names_them() {
        assert_eq!(
            required(None).unwrap_err(),
            "missing required keys in data object"
        );
        let empty = Map::new();
        assert_eq!(
            required(Some(&empty)).unwrap_err(),
            "missing required keys in data object"
        );
        let only = json!({"bindings": ["call.*.*"]});
        assert_eq!(
            required(only.as_object()).unwrap_err(),
            "missing required keys : account_id, binding"
        );
        let bad = json!({"account_id": "a", "binding": 5});
        assert_eq!(
            required(bad.as_object()).unwrap_err(),
            "binding must be a string"
        );
        let good = json!({"account_id": "a", "binding": "call.*.*"});
        assert_eq!(required(good.as_object()).unwrap(), ("a", "call.*.*"));
    }
}
