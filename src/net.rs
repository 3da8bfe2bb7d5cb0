//! How far a listen address reaches. Pure.

use std::net::IpAddr;

/// Ordered from narrowest to widest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Loopback,
    Private,
    Public,
    /// A wildcard (`0.0.0.0`, `::`, `*`): every interface the host has.
    AllInterfaces,
}

impl Scope {
    pub const RANKS_WIDEST_FIRST: [&'static str; 4] = ["all_interfaces", "public", "private", "loopback"];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Loopback => "loopback",
            Scope::Private => "private",
            Scope::Public => "public",
            Scope::AllInterfaces => "all_interfaces",
        }
    }
}

/// Scope of one listen address as a server prints it (`127.0.0.1`, `::1`, `*`, `localhost`, a
/// host name). Unknown host names count as public: we cannot tell, so we assume the worst.
pub fn scope_of(addr: &str) -> Scope {
    let a = addr
        .trim()
        .trim_start_matches('-')
        .trim_start_matches('[')
        .trim_end_matches(']');
    match a {
        "*" | "0.0.0.0" | "::" | "" => return Scope::AllInterfaces,
        "localhost" => return Scope::Loopback,
        _ => {}
    }
    match a.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() => Scope::AllInterfaces,
        Ok(ip) if ip.is_loopback() => Scope::Loopback,
        Ok(IpAddr::V4(v4)) if v4.is_private() || v4.is_link_local() || is_cgnat(v4) => Scope::Private,
        Ok(IpAddr::V6(v6)) if (v6.segments()[0] & 0xfe00) == 0xfc00 || (v6.segments()[0] & 0xffc0) == 0xfe80 => {
            Scope::Private
        }
        _ => Scope::Public,
    }
}

fn is_cgnat(v4: std::net::Ipv4Addr) -> bool {
    let o = v4.octets();
    o[0] == 100 && (o[1] & 0xc0) == 64
}

/// The widest scope among several listen addresses; an empty list means the server's default of
/// listening everywhere.
pub fn widest<'a>(addrs: impl IntoIterator<Item = &'a str>) -> Scope {
    addrs.into_iter().map(scope_of).max().unwrap_or(Scope::AllInterfaces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("127.0.0.1", Scope::Loopback),
            ("-::1", Scope::Loopback),
            ("::1", Scope::Loopback),
            ("localhost", Scope::Loopback),
            ("10.1.2.3", Scope::Private),
            ("192.168.0.5", Scope::Private),
            ("172.16.4.4", Scope::Private),
            ("100.64.0.1", Scope::Private),
            ("fd00::1", Scope::Private),
            ("203.0.113.9", Scope::Public),
            ("db.example.com", Scope::Public),
            ("0.0.0.0", Scope::AllInterfaces),
            ("*", Scope::AllInterfaces),
            ("::", Scope::AllInterfaces),
        ];
        for (addr, want) in cases {
            assert_eq!(scope_of(addr), want, "{addr}");
        }
        assert_eq!(widest(["127.0.0.1", "10.0.0.1"]), Scope::Private);
        assert_eq!(widest(Vec::<&str>::new()), Scope::AllInterfaces);
    }
}
