//! The DynamoDB client, built for a fast cold start.
//!
//! - **TLS:** rustls on *ring*, whose randomness comes from the kernel (`getrandom`): no
//!   CPU-jitter entropy source to seed at the first handshake (aws-lc's costs tens of ms on a
//!   small Lambda), and no build-time flag that every build must remember to set.
//! - **Trust store:** Amazon's root CAs, compiled in ([`AMAZON_ROOTS`]), instead of reading and
//!   parsing every system root at cold start. `AWS_CA_BUNDLE`, if set, names a PEM file of
//!   further roots (a local TLS endpoint, a proxy); it is read once, and an unreadable or
//!   invalid file is an error at init rather than a failed handshake later.
//! - **The functions' client** ([`from_lambda_env`]) is built straight from the variables Lambda
//!   sets: `AWS_REGION`, and the execution role's credentials in `AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (`EnvironmentVariableCredentialsProvider`),
//!   with no profile files, IMDS or STS probed. `AWS_ENDPOINT_URL_DYNAMODB` (or
//!   `AWS_ENDPOINT_URL`) points it elsewhere, as it does the SDK.
//! - The admin CLI and the tests keep aws-config's standard chain (`config::sdk_config`), with
//!   the HTTP client of [`standard_http_client`]: the system's roots plus `AWS_CA_BUNDLE`.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Amazon Root CA 1 to 4 and Starfield Services Root CA G2 (the root that cross-signs them):
/// every AWS service endpoint chains to one of these.
pub const AMAZON_ROOTS: &str = include_str!("certs/amazon-roots.pem");

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the environment variable {0} must be set")]
    Missing(&'static str),
    #[error("AWS_CA_BUNDLE: cannot read {path}: {source}")]
    CaBundleUnreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("AWS_CA_BUNDLE: {path} holds no valid PEM certificate")]
    CaBundleInvalid { path: String },
}

/// The PEM certificates of `pem`, checked: at least one, every one parsable.
fn checked_pem(pem: &[u8]) -> Option<Vec<u8>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .ok()?;
    (!certs.is_empty()).then(|| pem.to_vec())
}

/// The roots named by `AWS_CA_BUNDLE`, if it is set.
fn ca_bundle() -> Result<Option<Vec<u8>>, ClientError> {
    let Some(path) = std::env::var("AWS_CA_BUNDLE")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        return Ok(None);
    };
    let pem = std::fs::read(&path).map_err(|source| ClientError::CaBundleUnreadable {
        path: path.clone(),
        source,
    })?;
    checked_pem(&pem)
        .map(Some)
        .ok_or(ClientError::CaBundleInvalid { path })
}

/// The functions' trust store: [`AMAZON_ROOTS`], plus `AWS_CA_BUNDLE` if set.
pub fn trust_store() -> Result<TrustStore, ClientError> {
    let mut store = TrustStore::empty().with_pem_certificate(AMAZON_ROOTS.as_bytes());
    if let Some(extra) = ca_bundle()? {
        store.add_pem_certificate(extra);
    }
    Ok(store)
}

/// An HTTPS client (rustls on ring) that trusts exactly `store`.
pub fn https_client(store: TrustStore) -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::rustls(CryptoMode::Ring))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(store)
                .build()
                .unwrap_or_default(),
        )
        .build_https()
}

/// The HTTPS client of the admin CLI and the tests: the system's roots, plus `AWS_CA_BUNDLE`
/// (an unreadable bundle is reported and left out; the handshake then fails visibly).
pub fn standard_http_client() -> SharedHttpClient {
    let mut store = TrustStore::default();
    match ca_bundle() {
        Ok(Some(extra)) => {
            store.add_pem_certificate(extra);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "AWS_CA_BUNDLE left out"),
    }
    https_client(store)
}

fn var(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The functions' DynamoDB client, from the Lambda environment (see the module docs), with
/// these timeouts and retries.
pub fn from_lambda_env(
    timeouts: TimeoutConfig,
    retry: RetryConfig,
) -> Result<aws_sdk_dynamodb::Client, ClientError> {
    let region = var("AWS_REGION").ok_or(ClientError::Missing("AWS_REGION"))?;
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .http_client(https_client(trust_store()?))
        .timeout_config(timeouts)
        .retry_config(retry);
    if let Some(url) = var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(url);
    }
    Ok(aws_sdk_dynamodb::Client::from_conf(config.build()))
}

/// The publisher's EventBridge client, built as [`from_lambda_env`] builds DynamoDB's (the
/// same HTTP client, trust store and credentials), with its own bounds: 1 s to connect, 3 s
/// per attempt, 3 attempts. `AWS_ENDPOINT_URL_EVENTBRIDGE` (or `AWS_ENDPOINT_URL`) points it
/// elsewhere.
pub fn eventbridge_from_lambda_env() -> Result<aws_sdk_eventbridge::Client, ClientError> {
    use std::time::Duration;
    let region = var("AWS_REGION").ok_or(ClientError::Missing("AWS_REGION"))?;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(10))
        .build();
    let mut config = aws_sdk_eventbridge::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .http_client(https_client(trust_store()?))
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(url) = var("AWS_ENDPOINT_URL_EVENTBRIDGE").or_else(|| var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(url);
    }
    Ok(aws_sdk_eventbridge::Client::from_conf(config.build()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compiled_in_roots_are_amazons_five() {
        let certs = CertificateDer::pem_slice_iter(AMAZON_ROOTS.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("the compiled-in roots parse");
        assert_eq!(certs.len(), 5);
    }

    #[test]
    fn a_bundle_without_a_valid_certificate_is_refused() {
        assert!(checked_pem(b"").is_none());
        assert!(checked_pem(b"not a certificate").is_none());
        assert!(
            checked_pem(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
                .is_none()
        );
        assert!(checked_pem(AMAZON_ROOTS.as_bytes()).is_some());
    }
}
