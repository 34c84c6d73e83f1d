//! The journal's record format. A record is `[length u32][crc32 u32][payload]`, little-endian;
//! the CRC covers the payload, so a record torn by a crash (or a flipped bit) is recognised and
//! reading stops there. Payloads start with a kind byte:
//!
//! - `1` accepted: id u64, tries u8, due i64, method u8, then webhook id, event id, hook id,
//!   account id, url (each a u32 length and UTF-8), header count u16 and pairs, body;
//! - `2` retry: id u64, tries u8, due i64;
//! - `3` finished: id u64.

use webhooks_core::delivery::HttpRequest;
use webhooks_core::pending::{JournalEntry, PendingDelivery};
use webhooks_core::{AccountId, HttpVerb};

const ACCEPTED: u8 = 1;
const RETRY: u8 = 2;
const FINISHED: u8 = 3;

/// Bytes before a record's payload.
pub(crate) const HEADER: usize = 8;

/// Appends one record to `out`.
pub(crate) fn encode(entry: &JournalEntry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    match entry {
        JournalEntry::Accepted(p) => {
            out.push(ACCEPTED);
            out.extend_from_slice(&p.id.to_le_bytes());
            out.push(p.tries);
            out.extend_from_slice(&p.due_unix_ms.to_le_bytes());
            out.push(verb_code(p.request.method));
            for s in [
                p.webhook_id.as_str(),
                p.event_id.as_str(),
                p.hook_id.as_str(),
                p.account_id.as_str(),
                p.request.url.as_str(),
            ] {
                put_str(out, s);
            }
            out.extend_from_slice(&(p.request.headers.len() as u16).to_le_bytes());
            for (k, v) in &p.request.headers {
                put_str(out, k);
                put_str(out, v);
            }
            put_str(out, &p.request.body);
        }
        JournalEntry::Retry {
            id,
            tries,
            due_unix_ms,
        } => {
            out.push(RETRY);
            out.extend_from_slice(&id.to_le_bytes());
            out.push(*tries);
            out.extend_from_slice(&due_unix_ms.to_le_bytes());
        }
        JournalEntry::Finished { id } => {
            out.push(FINISHED);
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Why reading stopped before the end of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Torn {
    /// The bytes left are fewer than a record claims (a write cut short).
    Short,
    /// The CRC does not match, or the payload does not decode.
    Corrupt,
}

/// Reads the record at the start of `buf`: the entry and the bytes it took.
pub(crate) fn decode(buf: &[u8]) -> Result<(JournalEntry, usize), Torn> {
    if buf.len() < HEADER {
        return Err(Torn::Short);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Err(Torn::Short);
    };
    if crc32fast::hash(payload) != crc {
        return Err(Torn::Corrupt);
    }
    let entry = Reader(payload).entry().ok_or(Torn::Corrupt)?;
    Ok((entry, HEADER + len))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn verb_code(v: HttpVerb) -> u8 {
    match v {
        HttpVerb::Get => 0,
        HttpVerb::Post => 1,
        HttpVerb::Put => 2,
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2)
            .map(|b| u16::from_le_bytes(b.try_into().expect("2")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8")))
    }
    fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
    fn string(&mut self) -> Option<String> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().expect("4")) as usize;
        std::str::from_utf8(self.take(n)?).ok().map(str::to_owned)
    }

    fn entry(mut self) -> Option<JournalEntry> {
        let entry = match self.u8()? {
            ACCEPTED => JournalEntry::Accepted(self.accepted()?),
            RETRY => JournalEntry::Retry {
                id: self.u64()?,
                tries: self.u8()?,
                due_unix_ms: self.i64()?,
            },
            FINISHED => JournalEntry::Finished { id: self.u64()? },
            _ => return None,
        };
        self.0.is_empty().then_some(entry)
    }

    fn accepted(&mut self) -> Option<PendingDelivery> {
        let id = self.u64()?;
        let tries = self.u8()?;
        let due_unix_ms = self.i64()?;
        let method = match self.u8()? {
            0 => HttpVerb::Get,
            1 => HttpVerb::Post,
            2 => HttpVerb::Put,
            _ => return None,
        };
        let webhook_id = self.string()?;
        let event_id = self.string()?;
        let hook_id = self.string()?;
        let account_id = AccountId::parse(&self.string()?).ok()?;
        let url = self.string()?;
        let headers = (0..self.u16()?)
            .map(|_| Some((self.string()?, self.string()?)))
            .collect::<Option<Vec<_>>>()?;
        let body = self.string()?;
        Some(PendingDelivery {
            id,
            webhook_id,
            event_id,
            hook_id,
            account_id,
            request: std::sync::Arc::new(HttpRequest {
                method,
                url,
                headers,
                body,
            }),
            tries,
            due_unix_ms,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn pending(id: u64) -> PendingDelivery {
        PendingDelivery {
            id,
            webhook_id: format!("msg_{id:032x}"),
            event_id: "0123456789".into(),
            hook_id: "h1".into(),
            account_id: AccountId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            request: std::sync::Arc::new(HttpRequest {
                method: HttpVerb::Post,
                url: "http://127.0.0.1:9/x".into(),
                headers: vec![("X-Hook-ID".into(), "h1".into())],
                body: "a=1&b=é".into(),
            }),
            tries: 1,
            due_unix_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn records_round_trip() {
        let entries = vec![
            JournalEntry::Accepted(pending(7)),
            JournalEntry::Retry {
                id: 7,
                tries: 2,
                due_unix_ms: -1,
            },
            JournalEntry::Finished { id: u64::MAX },
        ];
        let mut buf = Vec::new();
        for e in &entries {
            encode(e, &mut buf);
        }
        let mut at = 0;
        for e in &entries {
            let (got, used) = decode(&buf[at..]).unwrap();
            assert_eq!(&got, e);
            at += used;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn torn_and_corrupt_records_are_recognised() {
        let mut buf = Vec::new();
        encode(&JournalEntry::Accepted(pending(1)), &mut buf);
        for cut in [0, 3, HEADER, buf.len() - 1] {
            assert_eq!(decode(&buf[..cut]), Err(Torn::Short), "cut at {cut}");
        }
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        assert_eq!(decode(&buf), Err(Torn::Corrupt));
    }
}
