//! TLS to PostgreSQL, with libpq's meanings of `sslmode` and `sslrootcert`, through rustls
//! (ring; no OpenSSL). tokio-postgres itself knows only `disable`, `prefer` and `require`, and
//! refuses `sslrootcert`: [`split`] takes libpq's settings off the connection string (or
//! `PGSSLMODE` / `PGSSLROOTCERT` when the string sets none) and hands tokio-postgres the rest.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | when the server offers it | not checked (checked against `sslrootcert` when one is given) |
//! | `require` | always | as `prefer` |
//! | `verify-ca` | always | signed by `sslrootcert` (default: the system's CAs) |
//! | `verify-full` | always | as `verify-ca`, and issued for the host name connected to |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the system's
//! (`/etc/ssl/certs/ca-certificates.crt`). A Unix-socket connection never uses TLS (`prefer`
//! becomes `disable` there, as with libpq; `require` and stronger are refused).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

/// The system's CA bundle (Debian's `ca-certificates`).
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, String> {
        Ok(match s {
            "disable" => Mode::Disable,
            // libpq's `allow` tries without TLS first; without TLS is what it gets here.
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode {other:?}: expected disable, allow, prefer, require, verify-ca or \
                     verify-full"
                ))
            }
        })
    }
}

/// The TLS settings of a connection string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    /// `sslrootcert`: a PEM file, or `None` (with `system`: [`SYSTEM_CAS`]).
    pub root_cert: Option<PathBuf>,
}

/// Take `sslmode` and `sslrootcert` off `url` (a `postgres://` URL or `key=value` words),
/// falling back on `PGSSLMODE` and `PGSSLROOTCERT`: the string left for tokio-postgres
/// (with its own `sslmode`: `disable`, `prefer` or `require`) and the settings.
pub fn split(url: &str) -> Result<(String, Settings), String> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let (rest, mode, root) = if is_url {
        split_url(url)?
    } else {
        split_words(url)
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mode = Mode::parse(
        &mode
            .or_else(|| env("PGSSLMODE"))
            .unwrap_or_else(|| "prefer".into()),
    )?;
    let root = root.or_else(|| env("PGSSLROOTCERT")).map(|r| {
        if r == "system" {
            PathBuf::from(SYSTEM_CAS)
        } else {
            PathBuf::from(r)
        }
    });
    let theirs = match mode {
        Mode::Disable => "disable",
        Mode::Prefer => "prefer",
        _ => "require",
    };
    let rest = if is_url {
        let sep = if rest.contains('?') { '&' } else { '?' };
        format!("{rest}{sep}sslmode={theirs}")
    } else {
        format!("{rest} sslmode={theirs}")
    };
    Ok((
        rest,
        Settings {
            mode,
            root_cert: root,
        },
    ))
}

type Split = (String, Option<String>, Option<String>);

fn split_url(url: &str) -> Result<Split, String> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), None, None));
    };
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded =
            || percent_decode(v).ok_or_else(|| format!("{k}: not a percent-encoded value: {v:?}"));
        match k {
            "sslmode" => mode = Some(decoded()?),
            "sslrootcert" => root = Some(decoded()?),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, mode, root))
}

fn split_words(url: &str) -> Split {
    let (mut mode, mut root) = (None, None);
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.trim_matches('\'').to_string()),
            Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_string()),
            _ => kept.push(word),
        }
    }
    (kept.join(" "), mode, root)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A Unix socket never carries TLS: `prefer` becomes `disable` on one; stronger modes are
/// refused.
pub fn check_hosts(config: &mut tokio_postgres::Config, settings: &Settings) -> Result<(), String> {
    let unix = !config.get_hosts().is_empty()
        && config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
    if unix {
        match settings.mode {
            Mode::Disable => {}
            Mode::Prefer => {
                config.ssl_mode(SslMode::Disable);
            }
            _ => return Err("sslmode needs TLS, which a Unix-socket connection cannot use".into()),
        }
    }
    Ok(())
}

/// The rustls connector for `settings`.
pub fn connector(settings: &Settings) -> Result<Rustls, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let roots = match (&settings.root_cert, settings.mode) {
        (Some(path), _) => Some(roots(path)?),
        (None, Mode::VerifyCa | Mode::VerifyFull) => Some(roots(&PathBuf::from(SYSTEM_CAS))?),
        (None, _) => None,
    };
    let config = match roots {
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
        Some(roots) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| e.to_string())?;
            if settings.mode == Mode::VerifyFull {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            }
        }
    };
    Ok(Rustls(Arc::new(config)))
}

fn roots(path: &PathBuf) -> Result<RootCertStore, String> {
    let what = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
    let bytes = std::fs::read(path).map_err(|e| what(&e))?;
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| what(&e))?;
        store.add(cert).map_err(|e| what(&e))?;
    }
    if store.is_empty() {
        return Err(what(&"no PEM certificate in it"));
    }
    Ok(store)
}

/// `prefer` and `require` without `sslrootcert`: encrypted, the certificate not checked (as
/// libpq); the handshake's signatures still are.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's [`MakeTlsConnect`] over rustls.
#[derive(Clone)]
pub struct Rustls(Arc<ClientConfig>);

impl<S> MakeTlsConnect<S> for Rustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> io::Result<Connect> {
        // A Unix socket has no host name (and never gets here with TLS on: see
        // [`check_hosts`]); its name is never checked.
        let name = ServerName::try_from(hostname.to_string())
            .or_else(|_| ServerName::try_from("localhost".to_string()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Connect {
            config: Arc::clone(&self.0),
            name,
        })
    }
}

/// One connection's TLS handshake.
pub struct Connect {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Stream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(Stream(tls))
        })
    }
}

/// A TLS connection to the server.
pub struct Stream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tokio_postgres::tls::TlsStream for Stream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (libpq's `channel_binding=prefer` falls back to it).
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_settings_are_taken_off_a_url_and_tokio_postgres_gets_its_own() {
        let (rest, s) = split(
            "postgres://u:p@db:5432/g?application_name=x&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db:5432/g?application_name=x&sslmode=require"
        );
        assert_eq!(
            s,
            Settings {
                mode: Mode::VerifyFull,
                root_cert: Some("/etc/ca.pem".into())
            }
        );
        let (rest, s) = split("postgres://db/g?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), s.mode),
            ("postgres://db/g?sslmode=disable", Mode::Disable)
        );
        let (rest, s) = split("host=db dbname=g sslmode=verify-ca sslrootcert=system").unwrap();
        assert_eq!(rest, "host=db dbname=g sslmode=require");
        assert_eq!(s.mode, Mode::VerifyCa);
        assert_eq!(s.root_cert, Some(PathBuf::from(SYSTEM_CAS)));
        let e = split("postgres://db/g?sslmode=verify").unwrap_err();
        assert!(e.contains("sslmode \"verify\""), "{e}");
        let e = split("postgres://db/g?sslrootcert=%zz").unwrap_err();
        assert!(e.contains("sslrootcert"), "{e}");
    }

    #[test]
    fn a_missing_or_empty_root_certificate_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let none = dir.path().join("none.pem");
        let settings = Settings {
            mode: Mode::VerifyCa,
            root_cert: Some(none.clone()),
        };
        let e = connector(&settings).err().unwrap();
        assert!(e.contains(&none.display().to_string()), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = connector(&Settings {
            root_cert: Some(empty),
            ..settings
        })
        .err()
        .unwrap();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
