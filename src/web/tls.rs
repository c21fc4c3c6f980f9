//! TLS: PEM files given by the owner, or a self-signed certificate generated
//! once and kept in the data directory. rustls on the `ring` provider (no
//! OpenSSL, no cmake); HTTP/2 is offered through ALPN so a page with several
//! streams is not held to a browser's six connections per host.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::{hex, sha256};

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files (certificate chain and private key).
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// Generated once into `<data-dir>/tls/`.
    SelfSigned,
}

/// Why TLS could not be set up; says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The PEM held no usable certificate or key.
    #[error("{path}: {what}; expected a PEM file")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing.
        what: &'static str,
    },
    /// rustls refused the pair.
    #[error("certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
    /// Generating the certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A loaded TLS setup.
pub struct Tls {
    /// For the server.
    pub config: RustlsConfig,
    /// SHA-256 of the leaf certificate, `AA:BB:...`, for the owner to check.
    pub fingerprint: String,
    /// The certificate file in use.
    pub cert_path: PathBuf,
}

/// Loads or creates the certificate.
pub fn load(source: &TlsSource, data_dir: &Path, listen: SocketAddr) -> Result<Tls, TlsError> {
    let (cert_path, key_path) = match source {
        TlsSource::Files { cert, key } => (cert.clone(), key.clone()),
        TlsSource::SelfSigned => ensure_self_signed(data_dir, listen)?,
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path)?;
    let fingerprint = certs
        .first()
        .map(|c| fingerprint(c.as_ref()))
        .unwrap_or_default();
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls {
        config: RustlsConfig::from_config(Arc::new(config)),
        fingerprint,
        cert_path,
    })
}

/// `AA:BB:..` SHA-256 of a DER certificate (what browsers show).
pub fn fingerprint(der: &[u8]) -> String {
    hex(&sha256(der))
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|err| TlsError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_path_buf(),
            what: "no certificate found",
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|err| TlsError::Io {
        path: path.to_path_buf(),
        err,
    })?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| TlsError::Pem {
        path: path.to_path_buf(),
        what: "no private key found",
    })
}

/// Creates `<data-dir>/tls/cert.pem` and `key.pem` unless they exist. Names:
/// localhost, this host's name, loopback addresses and the listen address.
fn ensure_self_signed(data_dir: &Path, listen: SocketAddr) -> Result<(PathBuf, PathBuf), TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |err| TlsError::Io { path, err }
    };
    crate::datadir::create_dir(&dir).map_err(io(&dir))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() {
            names.push(host.to_string());
            names.push(format!("{host}.local"));
        }
    }
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    let generated = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, generated.key_pair.serialize_pem().as_bytes()).map_err(io(&key))?;
    // Public anyway, but nothing in the data directory is for others.
    write_private(&cert, generated.cert.pem().as_bytes()).map_err(io(&cert))?;
    tracing::info!("generated a self-signed certificate in {}", cert.display());
    Ok((cert, key))
}

/// Writes a file only the owner can read (a private key).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::datadir::FILE_MODE)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_and_reused() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let a = load(&TlsSource::SelfSigned, dir.path(), listen).unwrap();
        let b = load(&TlsSource::SelfSigned, dir.path(), listen).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint, "kept, not regenerated");
        assert_eq!(a.fingerprint.len(), 32 * 3 - 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key readable by the owner only");
    }

    #[test]
    fn bad_files_are_explained() {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem").unwrap();
        let src = TlsSource::Files {
            cert: junk.clone(),
            key: junk.clone(),
        };
        let err = load(&src, dir.path(), "127.0.0.1:0".parse().unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("junk.pem"), "{err}");
        let missing = TlsSource::Files {
            cert: dir.path().join("nope.pem"),
            key: junk,
        };
        let err = load(&missing, dir.path(), "127.0.0.1:0".parse().unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
