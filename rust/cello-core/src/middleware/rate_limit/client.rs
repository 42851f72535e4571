//! Whose budget a request spends: the client's address (believing
//! `X-Forwarded-For` and `X-Real-IP` only from trusted proxies), a header's
//! value, or the path.

use std::net::{IpAddr, Ipv6Addr};

use crate::http::request::RequestHead;

/// An address or a network (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `"192.168.0.1"` or `"10.0.0.0/8"` (host bits must be zero).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an IP address or network");
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let base: IpAddr = address.parse().map_err(|_| bad())?;
        let width = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(bad)?,
            None => width,
        };
        let network = Network { base, prefix };
        if network.masked(base) != bits(base) {
            return Err(format!("{text:?} has host bits set"));
        }
        Ok(network)
    }

    fn masked(&self, address: IpAddr) -> u128 {
        let width = if address.is_ipv4() { 32 } else { 128 };
        let host_bits = u32::from(width - self.prefix);
        let mask = if host_bits >= 128 {
            0
        } else {
            u128::MAX << host_bits
        };
        bits(address) & mask
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        address.is_ipv4() == self.base.is_ipv4() && self.masked(address) == bits(self.base)
    }
}

fn bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`) is the IPv4 one.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Parses one `X-Forwarded-For` entry: an address, maybe with a port
/// (`1.2.3.4:80`, `[::1]:80`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(address) = entry.parse() {
        return Some(address);
    }
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let (host, port) = entry.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse().ok()
}

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        items
            .iter()
            .map(|s| Network::parse(s.as_ref()))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(address))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy;
    /// then the right-most `X-Forwarded-For` address that is not a trusted
    /// proxy (entries further left were written by the client and prove
    /// nothing), else `X-Real-IP`. None when the request has no peer.
    pub fn client(&self, head: &RequestHead) -> Option<IpAddr> {
        let peer = canonical(head.client?.ip());
        if !self.trusts(peer) {
            return Some(peer);
        }
        let forwarded: Vec<&str> = head
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        if !forwarded.is_empty() {
            let mut last = peer;
            for entry in forwarded.iter().rev() {
                // An entry a trusted proxy would not write ends the chain:
                // the address before it is as far as trust reaches.
                let Some(address) = parse_forwarded(entry).map(canonical) else {
                    return Some(last);
                };
                if !self.trusts(address) {
                    return Some(address);
                }
                last = address;
            }
            return Some(last);
        }
        head.headers
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_forwarded)
            .map(canonical)
            .or(Some(peer))
    }
}

/// The key an address is limited under: an IPv6 client by its /64, the
/// block one subscriber usually holds, so it cannot rotate addresses.
pub fn address_key(address: Option<IpAddr>) -> String {
    match address {
        Some(IpAddr::V6(v6)) => {
            let net = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("ip:{net}/64")
        }
        Some(v4) => format!("ip:{v4}"),
        None => "ip:unknown".to_owned(),
    }
}

/// What a request's key is made of.
#[derive(Debug, Clone)]
pub enum KeyBy {
    Ip,
    /// A header's value; requests without it fall back to their address.
    Header(http::HeaderName),
    /// The path: every client shares one budget per path.
    Path,
}

impl KeyBy {
    /// `"ip"`, `"header:<name>"` or `"path"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "ip" => Ok(KeyBy::Ip),
            "path" => Ok(KeyBy::Path),
            _ => {
                let name = text.strip_prefix("header:").ok_or_else(|| {
                    format!("key_by {text:?} is not 'ip', 'path' or 'header:<name>'")
                })?;
                http::HeaderName::from_bytes(name.trim().as_bytes())
                    .map(KeyBy::Header)
                    .map_err(|_| format!("key_by {text:?}: {name:?} is not a header name"))
            }
        }
    }

    pub fn key(&self, head: &RequestHead, proxies: &TrustedProxies) -> Vec<u8> {
        match self {
            KeyBy::Ip => address_key(proxies.client(head)).into_bytes(),
            KeyBy::Path => {
                let mut key = b"path:".to_vec();
                key.extend_from_slice(head.path.as_bytes());
                key
            }
            KeyBy::Header(name) => match head.headers.get(name) {
                Some(value) => {
                    let mut key = b"header:".to_vec();
                    key.extend_from_slice(value.as_bytes());
                    key
                }
                None => address_key(proxies.client(head)).into_bytes(),
            },
        }
    }
}
