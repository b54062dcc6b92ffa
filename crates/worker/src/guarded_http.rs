//! The worker's HTTP client for addresses that users name (URL checks,
//! scrapes), behind an SSRF guard: every hop's host is resolved first and
//! refused when an address is loopback, private, link-local
//! (169.254.169.254 included), unique-local, multicast, unspecified or
//! broadcast, or one of the other encodings of internal addresses, unless it
//! is in the allow-list (`CRUNCH_SSRF_ALLOWLIST`); the connection then goes
//! to the checked address, so a second resolution cannot swap it. Bodies are
//! read up to a cap. Failures are classified (`dns`, `connect`, `timeout`,
//! `tls`, `too_many_redirects`, `body_too_large`, `blocked`, `http`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crunch_domain::{CheckMethod, CheckTimings, Redirect};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// Settings of the guarded client: one for URL checks, one for scrapes
/// (a larger body cap).
pub struct IoConfig {
    pub allowlist: Vec<IpNet>,
    pub max_body_bytes: u64,
    pub max_redirects: usize,
    pub tls: Arc<rustls::ClientConfig>,
}

impl IoConfig {
    /// `extra_ca_pem`: more trusted roots (PEM), e.g. a company CA.
    pub fn new(allowlist: Vec<IpNet>, max_body_bytes: u64, max_redirects: usize, extra_ca_pem: Option<&[u8]>) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = extra_ca_pem {
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                roots.add(cert?)?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { allowlist, max_body_bytes, max_redirects, tls: Arc::new(tls) })
    }
}

/// Whether the guard refuses an address (before the allow-list).
pub fn forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || o[0] == 0
                || o[0] >= 240 // 240.0.0.0/4, reserved
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, carrier-grade NAT
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, IETF protocol assignments
                || (o[0] == 192 && o[1] == 0 && o[2] == 2) // 192.0.2.0/24, documentation
                || (o[0] == 198 && o[1] == 51 && o[2] == 100) // 198.51.100.0/24, documentation
                || (o[0] == 203 && o[1] == 0 && o[2] == 113) // 203.0.113.0/24, documentation
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let v4 = |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || s[..6] == [0; 6] // ::/96, IPv4-compatible (deprecated)
                || v6.to_ipv4_mapped().is_some_and(|v4| forbidden(IpAddr::V4(v4)))
                // NAT64 64:ff9b::/96 reaches the IPv4 address it embeds;
                // 64:ff9b:1::/48 is for local networks
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] && forbidden(v4(s[6], s[7])))
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || (s[0] == 0x2002 && forbidden(v4(s[1], s[2]))) // 6to4 2002::/16 embeds an IPv4 address
                || (s[0] == 0x2001 && s[1] == 0) // Teredo 2001::/32 (the address it reaches is obfuscated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // 2001:db8::/32, documentation
        }
    }
}

/// A classified failure of one attempt.
#[derive(Debug)]
pub struct CheckError {
    pub kind: &'static str,
    pub message: String,
}

impl CheckError {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Worth another attempt (the target may recover); a refused target or a
    /// malformed redirect will not.
    pub fn retryable(&self) -> bool {
        matches!(self.kind, "dns" | "connect" | "timeout" | "http")
    }
}

/// Milliseconds with microsecond precision, for timings.
pub(crate) fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

async fn resolve(url: &url::Url, cfg: &IoConfig) -> Result<SocketAddr, CheckError> {
    let host = url.host_str().ok_or_else(|| CheckError::new("dns", "the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| CheckError::new("dns", format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(CheckError::new("dns", format!("{host} has no address")));
    }
    addrs
        .iter()
        .copied()
        .find(|a| !forbidden(a.ip()) || cfg.allowlist.iter().any(|n| n.contains(&a.ip())))
        // The addresses are not named: they would let any key read the
        // internal DNS of the workers' network.
        .ok_or_else(|| CheckError::new("blocked", format!("{host} resolves only to private, loopback or otherwise internal addresses, which are refused")))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// What one fetch found (after following redirects).
pub struct Fetched {
    pub final_url: url::Url,
    pub status: u16,
    pub hops: Vec<Redirect>,
    pub timings: CheckTimings,
    pub content_type: Option<String>,
    pub content_length: u64,
    pub cert_expiry: Option<i64>,
    /// The body when `keep_body` was asked (at most the configured cap).
    pub body: Vec<u8>,
}

/// Fetches `url` behind the SSRF guard, following redirects, reading the body
/// up to the cap (kept when `keep_body`).
pub async fn fetch(start: &url::Url, method: CheckMethod, cfg: &IoConfig, keep_body: bool) -> Result<Fetched, CheckError> {
    let method = match method {
        CheckMethod::Get => hyper::Method::GET,
        CheckMethod::Head => hyper::Method::HEAD,
    };
    request(start, method, None, cfg, keep_body).await
}

/// [`fetch`] with any method and a body (its content type and bytes). A 301,
/// 302 or 303 answer to a POST is followed with a GET without the body, as
/// browsers do; 307 and 308 repeat the request.
pub async fn request(start: &url::Url, method: hyper::Method, body: Option<(&str, Bytes)>, cfg: &IoConfig, keep_body: bool) -> Result<Fetched, CheckError> {
    let (mut method, mut body) = (method, body);
    let started = Instant::now();
    let mut url = start.clone();
    let mut hops: Vec<Redirect> = Vec::new();
    let mut first = None;
    loop {
        let t_dns = Instant::now();
        let addr = resolve(&url, cfg).await?;
        let dns = t_dns.elapsed();
        let t_conn = Instant::now();
        let tcp = TcpStream::connect(addr).await.map_err(|e| CheckError::new("connect", format!("connecting to {addr}: {e}")))?;
        let connect = t_conn.elapsed();
        let mut tls_ms = None;
        let mut cert_expiry = None;
        let stream: Box<dyn Io> = if url.scheme() == "https" {
            let t_tls = Instant::now();
            let name = rustls::pki_types::ServerName::try_from(url.host_str().unwrap_or_default().to_owned())
                .map_err(|e| CheckError::new("tls", format!("invalid server name: {e}")))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::clone(&cfg.tls))
                .connect(name, tcp)
                .await
                .map_err(|e| CheckError::new("tls", e.to_string()))?;
            tls_ms = Some(ms(t_tls.elapsed()));
            cert_expiry = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|c| {
                let (_, cert) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
                Some(cert.validity().not_after.to_datetime().unix_timestamp())
            });
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| CheckError::new("http", format!("HTTP handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let host_header = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::USER_AGENT, "crunch-url-check/0.1")
            .header(hyper::header::ACCEPT, "*/*");
        if let Some((content_type, _)) = &body {
            req = req.header(hyper::header::CONTENT_TYPE, *content_type);
        }
        let req = req
            .body(Full::new(body.as_ref().map(|(_, b)| b.clone()).unwrap_or_default()))
            .map_err(|e| CheckError::new("http", e.to_string()))?;
        let t_req = Instant::now();
        let resp = sender.send_request(req).await.map_err(|e| CheckError::new("http", format!("request failed: {e}")))?;
        let first_byte = t_req.elapsed();
        first.get_or_insert((dns, connect, tls_ms));
        let status = resp.status();
        if status.is_redirection() {
            if let Some(loc) = resp.headers().get(hyper::header::LOCATION).and_then(|l| l.to_str().ok()) {
                let next = url.join(loc).map_err(|e| CheckError::new("http", format!("bad redirect location '{loc}': {e}")))?;
                hops.push(Redirect { url: url.as_str().to_owned(), status: status.as_u16(), location: next.as_str().to_owned() });
                if !matches!(next.scheme(), "http" | "https") {
                    return Err(CheckError::new("blocked", format!("redirect to the scheme '{}' refused", next.scheme())));
                }
                if hops.len() > cfg.max_redirects {
                    return Err(CheckError::new("too_many_redirects", format!("more than {} redirects", cfg.max_redirects)));
                }
                if matches!(status.as_u16(), 301..=303) && method == hyper::Method::POST {
                    (method, body) = (hyper::Method::GET, None);
                }
                url = next;
                continue;
            }
        }
        let content_type = resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let declared: Option<u64> = resp.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        if declared.is_some_and(|n| n > cfg.max_body_bytes) && method != hyper::Method::HEAD {
            return Err(CheckError::new("body_too_large", format!("the body is {} bytes; the limit is {}", declared.unwrap_or(0), cfg.max_body_bytes)));
        }
        let mut read: u64 = 0;
        let mut kept = Vec::new();
        let mut body = resp.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| CheckError::new("http", format!("reading the body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                read += data.len() as u64;
                if read > cfg.max_body_bytes {
                    return Err(CheckError::new("body_too_large", format!("the body exceeds the limit of {} bytes", cfg.max_body_bytes)));
                }
                if keep_body {
                    kept.extend_from_slice(data);
                }
            }
        }
        let (dns, connect, tls) = first.unwrap_or((dns, connect, tls_ms));
        return Ok(Fetched {
            final_url: url,
            status: status.as_u16(),
            hops,
            timings: CheckTimings { dns: ms(dns), connect: ms(connect), tls, first_byte: ms(first_byte), total: ms(started.elapsed()) },
            content_type,
            content_length: declared.unwrap_or(read),
            cert_expiry,
            body: kept,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::forbidden;

    #[test]
    fn the_guard_refuses_internal_addresses() {
        for ip in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "0.0.0.0", "224.0.0.1",
                   "255.255.255.255", "100.64.0.1", "::1", "::", "fc00::1", "fd12::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
                   "::127.0.0.1", "::10.0.0.1", "::8.8.8.8", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::1",
                   "2002:a00:1::", "fec0::1", "2001::1", "2001:db8::1", "198.18.0.1", "198.19.255.255", "240.0.0.1",
                   "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9"] {
            assert!(forbidden(ip.parse().expect(ip)), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "64:ff9b::808:808", "2002:808:808::1", "198.20.0.1", "192.0.1.1"] {
            assert!(!forbidden(ip.parse().expect(ip)), "{ip}");
        }
    }
}
