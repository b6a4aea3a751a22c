//! A TLS-terminating front for DynamoDB Local, so that the functions and the floors make the
//! TLS handshake they make in AWS: a CA and a server certificate for 127.0.0.1 made for the
//! run (rcgen), TLS accepted with rustls on ring, the plain bytes copied to DynamoDB Local.
//! The functions trust the run's CA through the mechanism they use in AWS
//! (`apikeys::client`, `AWS_CA_BUNDLE`); the variants that load the system's roots are given
//! the system bundle plus that CA in `SSL_CERT_FILE`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::BoxError;

/// A CA made for this run, and a server certificate it signed for 127.0.0.1 and localhost.
pub struct RunCa {
    pub ca_pem: String,
    cert: rustls::pki_types::CertificateDer<'static>,
    key: Vec<u8>,
}

impl RunCa {
    pub fn new(name: &str) -> Result<RunCa, BoxError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("apikeys benchmark CA ({name})"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()])?;
        leaf.subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let key = KeyPair::generate()?;
        let cert = leaf.signed_by(&key, &ca)?;
        Ok(RunCa {
            ca_pem: ca.pem(),
            cert: cert.der().clone(),
            key: key.serialize_der(),
        })
    }
}

/// The TLS front: listens on a free loopback port, forwards to `upstream`.
pub struct TlsFront {
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    pub async fn start(ca: &RunCa, upstream: SocketAddr) -> Result<TlsFront, BoxError> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![ca.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.key.clone())),
        )?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return; // a refused handshake: the client's CA check at work
                    };
                    let Ok(mut plain) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = plain.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(TlsFront { addr, server })
    }

    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn stop(self) {
        self.server.abort();
    }
}

/// Checks the TLS front through the functions' own HTTP client (`apikeys::client`): the
/// run's CA reaches DynamoDB Local; another CA, and Amazon's roots alone, fail the handshake.
pub async fn check_trust(front: &TlsFront, ca: &RunCa, table: &str) -> Result<(), BoxError> {
    use aws_smithy_http_client::tls::TrustStore;
    let wrong = RunCa::new("wrong")?;
    let amazon = || TrustStore::empty().with_pem_certificate(apikeys::client::AMAZON_ROOTS);
    let get = |store: TrustStore| {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            // DynamoDB Local keeps the tables of each access key and region apart: the
            // functions' ones.
            .region(aws_sdk_dynamodb::config::Region::new(
                std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            ))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .endpoint_url(front.url())
            .http_client(apikeys::client::https_client(store))
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let table = table.to_owned();
        async move {
            client
                .get_item()
                .table_name(table)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S("TLS".into()),
                )
                .key(
                    "sk",
                    aws_sdk_dynamodb::types::AttributeValue::S("TLS".into()),
                )
                .send()
                .await
        }
    };
    get(amazon().with_pem_certificate(ca.ca_pem.clone()))
        .await
        .map_err(|e| format!("the TLS front is not reachable with the run's CA: {e:?}"))?;
    if get(amazon().with_pem_certificate(wrong.ca_pem.clone()))
        .await
        .is_ok()
    {
        return Err("a client trusting another CA reached the TLS front".into());
    }
    if get(amazon()).await.is_ok() {
        return Err("a client trusting only Amazon's roots reached the TLS front".into());
    }
    Ok(())
}
