//! Downloading a call's audio: `audio_url` comes from call records, so it is untrusted.
//! Allowed schemes only; an optional host allow-list; the host is resolved here and every
//! address it resolves to must be public (loopback, private, link-local — the cloud
//! metadata address 169.254.169.254 included —, CGNAT, ULA, … are refused unless the host
//! is in `audio.allow_private`); the connection is pinned to the checked address (no DNS
//! rebinding between check and connect) and proxies are not used; redirects are followed
//! by hand and each hop is checked again; the body is read in chunks and the download
//! stops at `audio.max_bytes`; the whole download has a deadline. Each refusal is a
//! permanent error whose text lands in the call's trace and the DLQ.

use super::http::{redact_url, Http, Reply};
use super::ProviderError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Bounds from config `[audio]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioPolicy {
    pub schemes: Vec<String>,
    /// Empty: any host (that resolves to public addresses).
    pub allowed_hosts: Vec<String>,
    /// Hosts or IPs that may resolve to non-public addresses; "*" = any.
    pub allow_private: Vec<String>,
    pub max_bytes: u64,
    pub timeout: Duration,
}

impl Default for AudioPolicy {
    fn default() -> Self {
        AudioPolicy {
            schemes: vec!["http".into(), "https".into()],
            allowed_hosts: Vec::new(),
            allow_private: Vec::new(),
            max_bytes: 200 * 1024 * 1024,
            timeout: Duration::from_secs(300),
        }
    }
}

const MAX_REDIRECTS: usize = 5;

impl AudioPolicy {
    pub fn from_config(c: &crate::config::AudioConfig) -> AudioPolicy {
        AudioPolicy {
            schemes: crate::config::list(&c.allowed_schemes),
            allowed_hosts: crate::config::list(&c.allowed_hosts),
            allow_private: crate::config::list(&c.allow_private),
            max_bytes: c.max_bytes.max(1),
            timeout: Duration::from_secs(c.timeout_s.max(1)),
        }
    }

    /// Tests and local setups: recordings served from this machine.
    pub fn allowing_loopback() -> AudioPolicy {
        AudioPolicy {
            allow_private: vec!["127.0.0.1".into(), "localhost".into(), "::1".into()],
            ..Default::default()
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self
                .allowed_hosts
                .iter()
                .any(|h| match h.strip_prefix("*.") {
                    Some(suffix) => host.ends_with(&format!(".{suffix}")),
                    None => h == host,
                })
    }

    fn private_allowed(&self, host: &str, ip: &IpAddr) -> bool {
        let ip = ip.to_string();
        self.allow_private
            .iter()
            .any(|a| a == "*" || a == host || *a == ip)
    }
}

/// Why an address is not public, or None when it is.
pub fn non_public(ip: &IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(&v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("unique local (private)")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64: the embedded IPv4 address decides.
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                non_public_v4(&v4)
            } else {
                None
            }
        }
    }
}

fn non_public_v4(ip: &Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if *ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("the cloud metadata address")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 0 {
        Some("unspecified (0.0.0.0/8)")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments (192.0.0.0/24)")
    } else if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        Some("benchmarking (198.18.0.0/15)")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

/// The checked target of one hop: the URL and the address to connect to.
struct Target {
    url: url::Url,
    host: String,
    addr: SocketAddr,
}

async fn check_target(
    http: &Http,
    policy: &AudioPolicy,
    url: &str,
) -> Result<Target, ProviderError> {
    let shown = redact_url(url);
    let u = url::Url::parse(url).map_err(|e| {
        http.permanent(format!(
            "audio_url {} is not a valid URL: {e}",
            crate::domain::text::sanitize(&shown)
        ))
    })?;
    let scheme = u.scheme().to_ascii_lowercase();
    if !policy.schemes.contains(&scheme) {
        let allowed: Vec<String> = policy.schemes.iter().map(|s| format!("{s}://")).collect();
        return Err(http.permanent(format!(
            "audio_url {shown}: scheme {scheme}:// is not allowed for downloads: {} downloads the audio itself and only fetches {} URLs (audio.allowed_schemes)",
            http.provider,
            allowed.join(" and ")
        )));
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(http.permanent(format!("audio_url {shown} has no host"))),
    };
    if !policy.host_allowed(&host) {
        return Err(http.permanent(format!(
            "audio_url {shown}: host {host} is not in audio.allowed_hosts ({})",
            policy.allowed_hosts.join(",")
        )));
    }
    let port = u.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await
        .map_err(|_| http.transient(format!("audio_url {shown}: resolving {host} timed out")))?
        .map_err(|e| http.transient(format!("audio_url {shown}: cannot resolve {host}: {e}")))?
        .collect(),
    };
    if addrs.is_empty() {
        return Err(http.transient(format!("audio_url {shown}: {host} resolves to no address")));
    }
    // Every address must pass: a name with one public and one private address could be
    // connected to either.
    for a in &addrs {
        if let Some(why) = non_public(&a.ip()) {
            if !policy.private_allowed(&host, &a.ip()) {
                return Err(http.permanent(format!(
                    "audio_url {shown}: host {host} resolves to {} ({why}): refused; if the recordings really are there, add the host to audio.allow_private",
                    a.ip()
                )));
            }
        }
    }
    Ok(Target {
        url: u,
        host,
        addr: addrs[0],
    })
}

/// GET `url` within the policy; the body, at most `max_bytes` of it.
pub(crate) async fn fetch(
    http: &Http,
    policy: &AudioPolicy,
    url: &str,
) -> Result<Reply, ProviderError> {
    let shown = redact_url(url);
    match tokio::time::timeout(policy.timeout, fetch_hops(http, policy, url)).await {
        Ok(r) => r,
        Err(_) => Err(http.transient(format!(
            "downloading audio GET {shown}: not finished within {} s (audio.timeout_s)",
            policy.timeout.as_secs()
        ))),
    }
}

async fn fetch_hops(http: &Http, policy: &AudioPolicy, url: &str) -> Result<Reply, ProviderError> {
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let t = check_target(http, policy, &current).await?;
        let what = format!("downloading audio GET {}", redact_url(t.url.as_str()));
        // A client per hop, pinned to the address just checked; no proxy, no redirects.
        let client = reqwest::Client::builder()
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve(&t.host, t.addr)
            .user_agent(concat!("callops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| http.permanent(format!("{what}: cannot build the HTTP client: {e}")))?;
        let mut resp = client
            .get(t.url.clone())
            .send()
            .await
            .map_err(|e| http.transient(format!("{what}: {}", error_text(&e))))?;
        let status = resp.status();
        if status.is_redirection() {
            let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(http.permanent(format!(
                    "{what}: HTTP {} without a Location header",
                    status.as_u16()
                )));
            };
            current = t
                .url
                .join(loc)
                .map_err(|e| http.permanent(format!("{what}: bad redirect Location: {e}")))?
                .to_string();
            continue;
        }
        if let Some(len) = resp.content_length() {
            if status.is_success() && len > policy.max_bytes {
                return Err(http.permanent(format!(
                    "{what}: the audio is {len} bytes, over audio.max_bytes ({}); nothing downloaded",
                    policy.max_bytes
                )));
            }
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| http.transient(format!("{what} (reading the body): {}", error_text(&e))))?
        {
            if body.len() as u64 + chunk.len() as u64 > policy.max_bytes {
                return Err(http.permanent(format!(
                    "{what}: the audio is over audio.max_bytes ({} bytes); download stopped after {} bytes",
                    policy.max_bytes,
                    body.len()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        return Ok(Reply {
            status,
            headers,
            body,
        });
    }
    Err(http.permanent(format!(
        "downloading audio GET {}: more than {MAX_REDIRECTS} redirects",
        redact_url(url)
    )))
}

/// reqwest's error without the URL its own Display repeats (it may carry a signature).
fn error_text(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        parts.insert(0, "timed out".into());
    }
    if parts.is_empty() {
        "request failed".into()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_are_not_public() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "NAT"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00:ec2::254", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
        ] {
            let got = non_public(&ip.parse().unwrap());
            assert!(got.is_some_and(|g| g.contains(why)), "{ip}: {got:?}");
        }
        for ip in ["8.8.8.8", "2606:4700::1111", "93.184.216.34"] {
            assert_eq!(non_public(&ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[test]
    fn host_allow_list_with_wildcards() {
        let p = AudioPolicy {
            allowed_hosts: vec!["media.example.com".into(), "*.blob.core.windows.net".into()],
            ..Default::default()
        };
        assert!(p.host_allowed("media.example.com"));
        assert!(p.host_allowed("acct.blob.core.windows.net"));
        assert!(!p.host_allowed("blob.core.windows.net.evil.com"));
        assert!(!p.host_allowed("evil.com"));
    }
}
