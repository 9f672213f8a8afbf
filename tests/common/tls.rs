//! Certificates for the TLS tests, made in the test (rcgen): a CA, a server certificate
//! for `localhost` and 127.0.0.1 (also usable as a client's: the cluster certificate of
//! internal TLS, etcd and NATS), a client certificate it signed, and a client
//! certificate of another CA the server must not trust.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Where the PEM files are.
pub struct Certs {
    pub ca: PathBuf,
    pub server: PathBuf,
    pub server_key: PathBuf,
    pub client: PathBuf,
    pub client_key: PathBuf,
    pub rogue: PathBuf,
    pub rogue_key: PathBuf,
}

fn ca(name: &str) -> (CertificateParams, KeyPair, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = p.self_signed(&key).unwrap().pem();
    (p, key, pem)
}

fn leaf(
    names: &[&str],
    usage: &[ExtendedKeyUsagePurpose],
    issuer: &Issuer<'_, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, names[0]);
    p.extended_key_usages = usage.to_vec();
    (
        p.signed_by(&key, issuer).unwrap().pem(),
        key.serialize_pem(),
    )
}

impl Certs {
    /// The CA and the server certificate, as the test servers take them.
    pub fn files(&self) -> milvus::testkit::TlsFiles {
        milvus::testkit::TlsFiles {
            ca: self.ca.clone(),
            cert: self.server.clone(),
            key: self.server_key.clone(),
        }
    }
}

/// Writes a fresh set under `dir`.
pub fn make(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).unwrap();
    let (ca_params, ca_key, ca_pem) = ca("milvus test CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let (server, server_key) = leaf(
        &["localhost", "127.0.0.1"],
        &[
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        &issuer,
    );
    let (client, client_key) = leaf(&["client"], &[ExtendedKeyUsagePurpose::ClientAuth], &issuer);
    let (rogue_params, rogue_ca_key, _) = ca("someone else's CA");
    let rogue_issuer = Issuer::new(rogue_params, rogue_ca_key);
    let (rogue, rogue_key) = leaf(
        &["client"],
        &[ExtendedKeyUsagePurpose::ClientAuth],
        &rogue_issuer,
    );
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Certs {
        ca: write("ca.pem", &ca_pem),
        server: write("server.pem", &server),
        server_key: write("server.key", &server_key),
        client: write("client.pem", &client),
        client_key: write("client.key", &client_key),
        rogue: write("rogue.pem", &rogue),
        rogue_key: write("rogue.key", &rogue_key),
    }
}
