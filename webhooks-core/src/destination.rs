//! Where deliveries may go: the SSRF guard's policy.
//!
//! A webhooks engine sends HTTP requests to addresses its users choose, so unless it checks
//! where each request really goes it is an open door into the operator's network (cloud
//! metadata services, admin consoles on 10/8, the engine's own loopback). The policy refuses
//! every address that is not on the public internet, whatever spelling names it, unless an
//! operator allow-lists it (`--allowed-destinations`: receivers on a LAN, tests on loopback).
//!
//! Checked twice: when a hook is saved (an IP-literal host, in any of its numeric spellings,
//! and the `localhost` names; `validate.rs`), and when a delivery connects, on the addresses
//! the host name resolved to, which are then the only ones connected to (the engine's
//! resolver), so a name that resolves to a public address at save time and to an internal one
//! later (DNS rebinding) is refused too. This module decides; it does no I/O.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// The policy: refuse internal addresses except the allow-listed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationPolicy {
    /// Refuse internal addresses at all. Off only with [`DestinationPolicy::open`].
    guard: bool,
    /// Networks allowed although internal.
    allowed_nets: Vec<IpNet>,
    /// Host names (lower case, no trailing dot) allowed whatever they resolve to.
    allowed_hosts: Vec<String>,
}

/// Why a destination was refused: the address (or name) it would have reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination not allowed: {0}")]
pub struct Refused(pub String);

impl Default for DestinationPolicy {
    /// Guarded, nothing allow-listed.
    fn default() -> Self {
        DestinationPolicy {
            guard: true,
            allowed_nets: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

impl DestinationPolicy {
    /// No guard at all: every address is allowed. For embedding behind a guard of one's own.
    pub fn open() -> Self {
        DestinationPolicy {
            guard: false,
            ..Self::default()
        }
    }

    /// Guarded, with loopback (127.0.0.0/8 and ::1) allowed: for tests and local development,
    /// whose receivers listen on loopback.
    pub fn loopback_allowed() -> Self {
        Self::allowing(["127.0.0.0/8", "::1/128"]).expect("valid networks")
    }

    /// Guarded, with these entries allowed: CIDR networks (`10.1.0.0/16`), single addresses
    /// (`192.168.1.20`), or host names (`receiver.lan`, allowed whatever they resolve to).
    /// Blank entries are skipped. An entry that is neither is refused with its text.
    pub fn allowing<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, String> {
        let mut policy = Self::default();
        for entry in entries.into_iter().map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                policy.allowed_nets.push(net.trunc());
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                policy.allowed_nets.push(IpNet::from(canonical(ip)));
            } else if is_host_name(entry) {
                policy.allowed_hosts.push(normal_name(entry));
            } else {
                return Err(format!(
                    "{entry:?} is neither a network, an address nor a host name"
                ));
            }
        }
        Ok(policy)
    }

    /// Whether the guard is on.
    pub fn is_guarded(&self) -> bool {
        self.guard
    }

    /// Whether `host` (a name, as written in a uri) is allow-listed by name, so that whatever
    /// it resolves to may be connected to.
    pub fn allows_host(&self, host: &str) -> bool {
        !self.guard || self.allowed_hosts.contains(&normal_name(host))
    }

    /// Checks one address a delivery would connect to.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if !self.guard || !is_internal(ip) || self.allowed_nets.iter().any(|n| n.contains(&ip)) {
            Ok(())
        } else {
            Err(Refused(ip.to_string()))
        }
    }

    /// The check when a hook is saved: an IP-literal host is checked as an address; a name is
    /// refused only if it is one of the `localhost` names, which resolve to loopback by
    /// definition (RFC 6761) without asking DNS. Other names are checked when a delivery
    /// resolves them, since what they resolve to may change.
    pub fn check_saved_host(&self, host: &url::Host<&str>) -> Result<(), Refused> {
        match host {
            url::Host::Ipv4(ip) => self.check_ip(IpAddr::V4(*ip)),
            url::Host::Ipv6(ip) => self.check_ip(IpAddr::V6(*ip)),
            url::Host::Domain(name) => {
                let name = normal_name(name);
                let localhost = name == "localhost" || name.ends_with(".localhost");
                if localhost && !self.allows_host(&name) {
                    Err(Refused(name))
                } else {
                    Ok(())
                }
            }
        }
    }
}

impl fmt::Display for DestinationPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.guard {
            return f.write_str("open");
        }
        let allowed: Vec<String> = (self.allowed_nets.iter().map(ToString::to_string))
            .chain(self.allowed_hosts.iter().cloned())
            .collect();
        write!(f, "guarded, allowing [{}]", allowed.join(", "))
    }
}

/// Lower case without the trailing dot: `LocalHost.` and `localhost` are one name.
fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn is_host_name(entry: &str) -> bool {
    !entry.is_empty()
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The address an IPv6 form stands for when it embeds an IPv4 one (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`), so that it is judged as that IPv4
/// address: otherwise `[::ffff:127.0.0.1]` would pass as "not loopback".
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let s = v6.segments();
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback();
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    if compatible || nat64 {
        IpAddr::V4(embedded)
    } else {
        ip
    }
}

/// Whether an address is anything but a public unicast one. `ip` is taken as given; call
/// [`canonical`] first for IPv6 forms of IPv4 addresses.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // "this network", 0.0.0.0/8
        || ip.is_loopback() // 127/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || ip.is_link_local() // 169.254/16, cloud metadata services
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18/15
        || ip.is_multicast() // 224/4
        || a >= 240 // reserved 240/4, and the broadcast address
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || ip.is_multicast() // ff00::/8
        || ip.to_ipv4_mapped().is_some() // judged as IPv4 after `canonical`
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &DestinationPolicy, ip: &str) -> bool {
        policy.check_ip(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn internal_addresses_are_refused_in_every_form() {
        let p = DestinationPolicy::default();
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(refused(&p, ip), "{ip} was allowed");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let p = DestinationPolicy::default();
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(&p, ip), "{ip} was refused");
        }
    }

    #[test]
    fn the_refusal_names_the_address_as_judged() {
        let p = DestinationPolicy::default();
        let e = p.check_ip("::ffff:127.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "destination not allowed: 127.0.0.1");
    }

    #[test]
    fn the_allow_list_opens_networks_addresses_and_names() {
        let p =
            DestinationPolicy::allowing(["10.1.0.0/16", " 192.168.1.20 ", "", "Rx.Lan."]).unwrap();
        assert!(!refused(&p, "10.1.2.3"));
        assert!(!refused(&p, "::ffff:10.1.2.3"));
        assert!(refused(&p, "10.2.0.1"));
        assert!(!refused(&p, "192.168.1.20"));
        assert!(refused(&p, "192.168.1.21"));
        assert!(p.allows_host("rx.lan"));
        assert!(!p.allows_host("other.lan"));
        assert!(DestinationPolicy::allowing(["10.0.0.0/33"]).is_err());
        assert!(DestinationPolicy::allowing(["not a name"]).is_err());
    }

    #[test]
    fn loopback_allowed_opens_loopback_only() {
        let p = DestinationPolicy::loopback_allowed();
        assert!(!refused(&p, "127.0.0.2"));
        assert!(!refused(&p, "::1"));
        assert!(!refused(&p, "::ffff:127.0.0.1"));
        assert!(refused(&p, "10.0.0.1"));
        assert!(refused(&p, "169.254.169.254"));
    }

    #[test]
    fn open_allows_everything() {
        let p = DestinationPolicy::open();
        assert!(!refused(&p, "127.0.0.1"));
        assert!(p.allows_host("localhost"));
    }

    #[test]
    fn localhost_names_are_refused_when_saved() {
        let p = DestinationPolicy::default();
        for name in ["localhost", "LOCALHOST.", "foo.localhost", "a.b.localhost."] {
            assert!(
                p.check_saved_host(&url::Host::Domain(name)).is_err(),
                "{name}"
            );
        }
        assert!(p
            .check_saved_host(&url::Host::Domain("example.com"))
            .is_ok());
        assert!(p
            .check_saved_host(&url::Host::Domain("notlocalhost"))
            .is_ok());
        let allowed = DestinationPolicy::allowing(["localhost"]).unwrap();
        assert!(allowed
            .check_saved_host(&url::Host::Domain("localhost."))
            .is_ok());
    }
}
