//! Where the CouchDB store connects: [`CouchConfig`].

use webhooks_core::store::StoreError;

/// How to reach CouchDB.
#[derive(Clone, PartialEq, Eq)]
pub struct CouchConfig {
    /// The server's root, `http://host:5984`. Credentials may be written inside it
    /// (`http://user:pass@host:5984`); `username` and `password` win over them. A path after
    /// the host is refused: couch_rs addresses every request from the root.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Prepended to every database name: `""` in production (KAZOO's names exactly); tests
    /// give each case its own (`t1a2b_`), so cases share one server without sharing data.
    /// Lower-case letters, digits and `_` only, starting with a letter, so every name stays
    /// a legal CouchDB database name.
    pub prefix: String,
}

impl std::fmt::Debug for CouchConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password stays out of logs, and so does one written inside the URL.
        let url = match url::Url::parse(&self.url) {
            Ok(mut u) => {
                let _ = u.set_password(None);
                u.to_string()
            }
            Err(_) => "<not a url>".into(),
        };
        f.debug_struct("CouchConfig")
            .field("url", &url)
            .field("username", &self.username)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl CouchConfig {
    /// A server at `url`, credentials (if any) inside it, KAZOO's database names.
    pub fn new(url: impl Into<String>) -> Self {
        CouchConfig {
            url: url.into(),
            username: None,
            password: None,
            prefix: String::new(),
        }
    }

    /// The root URL without credentials, and the credentials to send.
    pub(super) fn split_credentials(
        &self,
    ) -> Result<(String, Option<String>, Option<String>), StoreError> {
        let bad = |why: &str| StoreError::Backend(format!("bad CouchDB url: {why}"));
        let mut url = url::Url::parse(&self.url).map_err(|e| bad(&e.to_string()))?;
        if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
            return Err(bad("not an http(s) url"));
        }
        if url.path() != "/" {
            return Err(bad("a path after the host is not supported"));
        }
        if !valid_prefix(&self.prefix) {
            return Err(StoreError::Backend(format!(
                "bad database prefix {:?}",
                self.prefix
            )));
        }
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        let in_url_user = Some(url.username())
            .filter(|u| !u.is_empty())
            .and_then(decode);
        let in_url_password = url.password().and_then(decode);
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let username = self.username.clone().or(in_url_user);
        let password = self.password.clone().or(in_url_password);
        Ok((url.to_string(), username, password))
    }
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.is_empty()
        || (prefix.starts_with(|c: char| c.is_ascii_lowercase())
            && prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_inside_the_url_are_taken_out_of_it() {
        let config = CouchConfig::new("http://admin:p%40ss@127.0.0.1:5984");
        let (root, user, password) = config.split_credentials().unwrap();
        assert_eq!(root, "http://127.0.0.1:5984/");
        assert_eq!(user.as_deref(), Some("admin"));
        assert_eq!(password.as_deref(), Some("p@ss"));
        assert!(!format!("{config:?}").contains("p%40ss"));
    }

    #[test]
    fn explicit_credentials_win_and_paths_and_odd_prefixes_are_refused() {
        let config = CouchConfig {
            username: Some("u".into()),
            ..CouchConfig::new("http://x:y@127.0.0.1:5984/")
        };
        assert_eq!(config.split_credentials().unwrap().1.as_deref(), Some("u"));
        assert!(CouchConfig::new("http://127.0.0.1:5984/couch")
            .split_credentials()
            .is_err());
        let prefix = |p: &str| CouchConfig {
            prefix: p.into(),
            ..CouchConfig::new("http://127.0.0.1:5984")
        };
        assert!(prefix("t12_").split_credentials().is_ok());
        assert!(prefix("T/").split_credentials().is_err());
    }
}
