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

/// How far a self-hosted resource can be reached from, for grading what an open door means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reach {
    Loopback,
    Private,
    Internet,
}

impl Reach {
    pub const RANKS_WIDEST_FIRST: [&'static str; 3] = ["internet", "private", "loopback"];

    pub fn parse(s: &str) -> Option<Reach> {
        [Reach::Loopback, Reach::Private, Reach::Internet]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Loopback => "loopback",
            Reach::Private => "private",
            Reach::Internet => "internet",
        }
    }
}

fn reach_of_scope(s: Scope) -> Reach {
    match s {
        Scope::Loopback => Reach::Loopback,
        // Every interface: at least the networks the host is on; we cannot see whether it has a
        // public address, unless we reached it on one.
        Scope::Private | Scope::AllInterfaces => Reach::Private,
        Scope::Public => Reach::Internet,
    }
}

/// The reach of a resource: as declared in the config if it is, otherwise the wider of where
/// the server listens and the address lockwatch reached it on (an IP literal; a host name tells
/// nothing). When the listen addresses are unknown, assume at least the private network.
pub fn reach(declared: Option<Reach>, listen: Option<Scope>, reached_host: &str) -> Reach {
    if let Some(r) = declared {
        return r;
    }
    let host = reached_host.trim_matches(['[', ']']);
    let reached = host
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|_| reach_of_scope(scope_of(host)))
        .unwrap_or(Reach::Loopback);
    let listening = listen.map(reach_of_scope).unwrap_or(Reach::Private);
    listening.max(reached)
}

/// Severity of "authentication is off", by reach: on a loopback-only listener only local
/// processes get in (high); anywhere else it is critical.
pub fn auth_off_severity(reach: Option<&str>) -> crate::model::Severity {
    match reach {
        Some("loopback") => crate::model::Severity::High,
        _ => crate::model::Severity::Critical,
    }
}

#[cfg(test)]
mod reach_tests {
    use super::*;

    #[test]
    fn reach_table() {
        let cases = [
            (None, Some(Scope::Loopback), "127.0.0.1", Reach::Loopback),
            (None, Some(Scope::AllInterfaces), "127.0.0.1", Reach::Private),
            (None, Some(Scope::Private), "10.0.0.5", Reach::Private),
            (None, Some(Scope::AllInterfaces), "203.0.113.7", Reach::Internet),
            (None, Some(Scope::Public), "127.0.0.1", Reach::Internet),
            (None, None, "127.0.0.1", Reach::Private),
            (None, Some(Scope::Loopback), "db.internal", Reach::Loopback),
            (
                Some(Reach::Internet),
                Some(Scope::Loopback),
                "127.0.0.1",
                Reach::Internet,
            ),
            (
                Some(Reach::Loopback),
                Some(Scope::AllInterfaces),
                "10.0.0.5",
                Reach::Loopback,
            ),
        ];
        for (declared, listen, host, want) in cases {
            assert_eq!(reach(declared, listen, host), want, "{declared:?} {listen:?} {host}");
        }
        assert_eq!(auth_off_severity(Some("loopback")), crate::model::Severity::High);
        assert_eq!(auth_off_severity(Some("internet")), crate::model::Severity::Critical);
        assert_eq!(auth_off_severity(None), crate::model::Severity::Critical);
    }
}
