//! Payload encodings of HTTP delivery (spec §7.1), byte for byte as KAZOO produces them, since
//! receivers parse what KAZOO sent them.
//!
//! `form-data` (for POST/PUT) and GET query strings use KAZOO's `json_to_querystring`: keys in
//! the JSON object's order and not escaped, values url-encoded the "legacy" way, nested objects
//! as `key[sub]=v`, arrays as `key[]=v1&key[]=v2`. `json` is the pretty-printed payload.

use serde_json::{Map, Value};

/// KAZOO's `json_to_querystring` of a payload.
pub fn querystring(payload: &Map<String, Value>) -> String {
    let mut out = String::with_capacity(256);
    object(&mut out, payload, None);
    out
}

fn object(out: &mut String, obj: &Map<String, Value>, prefix: Option<&str>) {
    // Every pair is followed by `&` but the last; a pair that renders to nothing (an empty
    // object or array) still gets its separator, as in KAZOO.
    let mut first = true;
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        if !first {
            out.push('&');
        }
        first = false;
        let key = match prefix {
            None => k.clone(),
            Some(p) => format!("{p}[{k}]"),
        };
        pair(out, &key, v);
    }
}

fn pair(out: &mut String, key: &str, v: &Value) {
    match v {
        Value::Object(o) => object(out, o, Some(key)),
        Value::Array(items) => {
            let mut first = true;
            for item in items.iter().filter(|i| !i.is_null()) {
                if !first {
                    out.push('&');
                }
                first = false;
                match item {
                    // KAZOO crashes on arrays of objects; we nest them under `key[]`.
                    Value::Object(o) => object(out, o, Some(&format!("{key}[]"))),
                    scalar => {
                        out.push_str(key);
                        out.push_str("[]=");
                        scalar_value(out, scalar);
                    }
                }
            }
        }
        scalar => {
            out.push_str(key);
            out.push('=');
            scalar_value(out, scalar);
        }
    }
}

fn scalar_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => urlencode_legacy(out, s),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => urlencode_legacy(out, &n.to_string()),
        Value::Array(_) | Value::Object(_) => urlencode_legacy(out, &v.to_string()),
        Value::Null => {}
    }
}

/// `kz_http_util:urlencode(_, legacy)`: `A-Z a-z 0-9 . - ~ _` kept, space as `+`, every other
/// byte as `%XX` with upper-case hex.
pub fn urlencode_legacy(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'~' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
    }
}

/// The GET url: the hook's uri with the query string appended. KAZOO appends `?` blindly even
/// when the uri has a query already (bug §16.7); we join with `&` then.
pub fn get_url(uri: &str, query: &str) -> String {
    if query.is_empty() {
        return uri.to_owned();
    }
    let sep = if uri.contains('?') {
        if uri.ends_with('?') || uri.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{uri}{sep}{query}")
}

/// The `json` body: pretty-printed, as KAZOO sends it.
pub fn json_body(payload: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(payload).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn qs(v: Value) -> String {
        querystring(v.as_object().unwrap())
    }

    #[test]
    fn spec_example() {
        assert_eq!(
            qs(json!({"a":"x y","b":["1","2"],"c":{"d":true}})),
            "a=x+y&b[]=1&b[]=2&c[d]=true"
        );
    }

    #[test]
    fn legacy_urlencoding_and_numbers() {
        assert_eq!(
            qs(json!({"u":"sip:+1@a.b/c~d_e-f","n":42,"f":1.5,"b":false})),
            "u=sip%3A%2B1%40a.b%2Fc~d_e-f&n=42&f=1.5&b=false"
        );
        assert_eq!(qs(json!({"é":"é"})), "é=%C3%A9", "keys are not escaped");
    }

    #[test]
    fn deep_nesting_and_empty_containers() {
        assert_eq!(qs(json!({"a":{"b":{"c":"d"}},"e":"f"})), "a[b][c]=d&e=f");
        assert_eq!(
            qs(json!({"a":{},"b":"c"})),
            "&b=c",
            "an empty object leaves its separator"
        );
        assert_eq!(qs(json!({"a":"1","n":null,"b":"2"})), "a=1&b=2");
    }

    #[test]
    fn get_url_joins_existing_queries() {
        assert_eq!(get_url("http://a/b", "x=1"), "http://a/b?x=1");
        assert_eq!(get_url("http://a/b?k=v", "x=1"), "http://a/b?k=v&x=1");
        assert_eq!(get_url("http://a/b?", "x=1"), "http://a/b?x=1");
    }
}
