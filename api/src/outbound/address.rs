//! Which destination addresses the outbound client refuses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// True when `ip` is not a globally routable unicast address: the ranges below come from the
/// IANA special-purpose address registries (RFC 6890 and its updates).
pub(super) fn is_blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_blocked_v4(v4),
        IpAddr::V6(v6) => is_blocked_v6(v6),
    }
}

fn is_blocked_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0/8 (RFC 791), includes the unspecified address
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16 (RFC 1918)
        || ip.is_link_local() // 169.254/16 (RFC 3927), cloud metadata endpoints
        || (a == 100 && b & 0xc0 == 64) // shared address space 100.64/10 (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737)
        || (a == 198 && b & 0xfe == 18) // benchmarking 198.18/15 (RFC 2544)
        || ip.is_multicast() // 224/4
        || a >= 240 // reserved 240/4, includes broadcast 255.255.255.255
}

fn is_blocked_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_ipv4(ip) {
        return is_blocked_v4(v4);
    }
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast() // ff00::/8
        || s[0] & 0xfe00 == 0xfc00 // unique local fc00::/7 (RFC 4193)
        || s[0] & 0xffc0 == 0xfe80 // link-local fe80::/10 (RFC 4291)
        || s[0] & 0xffc0 == 0xfec0 // deprecated site-local fec0::/10 (RFC 3879)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32 (RFC 3849)
        || (s[0] == 0x3fff && s[1] & 0xf000 == 0) // documentation 3fff::/20 (RFC 9637)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard 100::/64
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // local NAT64 64:ff9b:1::/48
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach IPv4 hosts: mapped
/// `::ffff:0:0/96`, compatible `::/96` (RFC 4291), translated `::ffff:0:0:0/96` (RFC 2765),
/// NAT64 `64:ff9b::/96` (RFC 6052) and 6to4 `2002::/16` (RFC 3056).
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0, 0, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn address_ranges() {
        let blocked = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fdff::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::ffff:0:192.168.1.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::1",
        ];
        for ip in blocked {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_blocked(ip), "{ip} should be blocked");
        }

        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::1",
        ];
        for ip in public {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_blocked(ip), "{ip} should be allowed");
        }
    }
}
