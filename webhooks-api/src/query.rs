//! Crossbar's query-string conventions shared by every listing: paging (`page_size`,
//! `start_key`, `paginate`), direction (`ascending` / `descending`), time ranges
//! (`created_from` / `created_to`) and the generic filters (`filter_<key>`, `filter_not_<key>`,
//! `has_key`, `key_missing`, `has_value`, `value_missing`, `created_*`, `modified_*`).
//! Unknown parameters, such as Monster UI's `_=<ms>` cache-buster, are ignored.

use serde_json::{json, Value};

use crate::envelope::ApiError;

/// The parameters of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub page_size: Option<usize>,
    pub start_key: Option<String>,
    pub paginate: bool,
    /// `Some(true)` for `descending=true` / `ascending=false`; `None` keeps the route's default.
    pub descending: Option<bool>,
    pub created_from: Option<i64>,
    pub created_to: Option<i64>,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone)]
enum Filter {
    Eq(Vec<String>, String),
    NotEq(Vec<String>, String),
    HasKey(Vec<String>),
    KeyMissing(Vec<String>),
    HasValue(Vec<String>),
    ValueMissing(Vec<String>),
    CreatedFrom(i64),
    CreatedTo(i64),
    ModifiedFrom(i64),
    ModifiedTo(i64),
}

fn path(key: &str) -> Vec<String> {
    key.split('.').map(str::to_owned).collect()
}

fn int_param(name: &str, v: &str) -> Result<i64, ApiError> {
    v.trim().parse::<i64>().map_err(|_| {
        ApiError::validation(json!({name: {"type": {
            "message": "Value did not match type(s): integer", "target": "integer", "value": v}}}))
    })
}

fn bool_param(v: &str) -> Option<bool> {
    match v {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl ListParams {
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut p = ListParams {
            paginate: true,
            ..ListParams::default()
        };
        for (k, v) in pairs {
            match k.as_str() {
                "page_size" => {
                    let n = int_param("page_size", v)?;
                    if n < 1 {
                        return Err(ApiError::validation(json!({"page_size": {"minimum": {
                            "message": "Value must be at least 1", "target": 1, "value": n}}})));
                    }
                    p.page_size = Some(n as usize);
                }
                "start_key" => p.start_key = Some(v.clone()),
                "paginate" => p.paginate = bool_param(v) != Some(false),
                "descending" => p.descending = bool_param(v).or(p.descending),
                "ascending" => p.descending = bool_param(v).map(|a| !a).or(p.descending),
                "created_from" => {
                    let n = int_param(k, v)?;
                    p.created_from = Some(n);
                    p.filters.push(Filter::CreatedFrom(n));
                }
                "created_to" => {
                    let n = int_param(k, v)?;
                    p.created_to = Some(n);
                    p.filters.push(Filter::CreatedTo(n));
                }
                "modified_from" => p.filters.push(Filter::ModifiedFrom(int_param(k, v)?)),
                "modified_to" => p.filters.push(Filter::ModifiedTo(int_param(k, v)?)),
                "has_key" => p.filters.push(Filter::HasKey(path(v))),
                "key_missing" => p.filters.push(Filter::KeyMissing(path(v))),
                "has_value" => p.filters.push(Filter::HasValue(path(v))),
                "value_missing" => p.filters.push(Filter::ValueMissing(path(v))),
                _ => {
                    if let Some(key) = k.strip_prefix("filter_not_") {
                        p.filters.push(Filter::NotEq(path(key), v.clone()));
                    } else if let Some(key) = k.strip_prefix("filter_") {
                        p.filters.push(Filter::Eq(path(key), v.clone()));
                    }
                }
            }
        }
        Ok(p)
    }

    pub fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    /// Does a document pass every filter? Time filters read `pvt_created` / `pvt_modified`.
    pub fn matches(&self, doc: &Value) -> bool {
        self.filters.iter().all(|f| match f {
            Filter::Eq(p, v) => lookup(doc, p).is_some_and(|x| same(x, v)),
            Filter::NotEq(p, v) => !lookup(doc, p).is_some_and(|x| same(x, v)),
            Filter::HasKey(p) => lookup(doc, p).is_some(),
            Filter::KeyMissing(p) => lookup(doc, p).is_none(),
            Filter::HasValue(p) => lookup(doc, p).is_some_and(non_empty),
            Filter::ValueMissing(p) => !lookup(doc, p).is_some_and(non_empty),
            Filter::CreatedFrom(t) => int_at(doc, "pvt_created").is_some_and(|c| c >= *t),
            Filter::CreatedTo(t) => int_at(doc, "pvt_created").is_some_and(|c| c <= *t),
            Filter::ModifiedFrom(t) => int_at(doc, "pvt_modified").is_some_and(|c| c >= *t),
            Filter::ModifiedTo(t) => int_at(doc, "pvt_modified").is_some_and(|c| c <= *t),
        })
    }
}

fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(doc, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn int_at(doc: &Value, key: &str) -> Option<i64> {
    doc.get(key).and_then(Value::as_i64)
}

fn non_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Null => false,
        _ => true,
    }
}

/// Query values are text; compare a JSON value by its text form (`true`, `3`, `user`).
fn same(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        other => {
            let rendered = other.to_string();
            rendered == text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &[(&str, &str)]) -> ListParams {
        let pairs: Vec<(String, String)> = q
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        ListParams::parse(&pairs).unwrap()
    }

    #[test]
    fn filters_match_like_crossbar() {
        let doc = json!({"event_name":"missed_call","enabled":true,"custom_data":{"type":"user"},"empty":""});
        assert!(params(&[("filter_event_name", "missed_call")]).matches(&doc));
        assert!(!params(&[("filter_event_name", "register")]).matches(&doc));
        assert!(params(&[("filter_not_event_name", "register")]).matches(&doc));
        assert!(params(&[("filter_enabled", "true")]).matches(&doc));
        assert!(params(&[("filter_custom_data.type", "user")]).matches(&doc));
        assert!(params(&[("has_key", "empty"), ("value_missing", "empty")]).matches(&doc));
        assert!(!params(&[("has_value", "empty")]).matches(&doc));
        assert!(params(&[("key_missing", "nope"), ("_", "12345")]).matches(&doc));
    }

    #[test]
    fn paging_params_are_checked() {
        let p = params(&[
            ("page_size", "2"),
            ("ascending", "true"),
            ("paginate", "false"),
        ]);
        assert_eq!(p.page_size, Some(2));
        assert_eq!(p.descending, Some(false));
        assert!(!p.paginate);
        let bad: Vec<(String, String)> = vec![("page_size".into(), "0".into())];
        assert_eq!(ListParams::parse(&bad).unwrap_err().status, 400);
    }
}
