//! Fetching GitHub's key list over HTTPS, and choosing the key source from the environment.
//!
//! The client is hyper-util's, over hyper-rustls with the system's root certificates: the
//! stack the AWS SDK already compiles for DynamoDB, so no HTTP crate is added for this one
//! GET. Each fetch is bounded in time ([`FETCH_TIMEOUT`]) and size ([`MAX_KEY_LIST_BYTES`]).
//!
//! Environment (read once per cold start, by [`key_source_from_env`]):
//! - `GITHUB_SECRET_SCANNING_KEYS`: GitHub's key list document itself. When set, the keys
//!   are never fetched (tests, air-gapped deploys).
//! - `GITHUB_SECRET_SCANNING_KEYS_URL`: where to fetch it, [`DEFAULT_KEYS_URL`] by default.
//!   It must be `https`, except on a loopback host (local tests).
//! - `GITHUB_SECRET_SCANNING_TOKEN`: optional GitHub token (no scope needed) sent with the
//!   fetch, which lifts GitHub's unauthenticated rate limit.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::Request;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderValue, USER_AGENT};
use hyper::{StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::keys::{FetchError, FetchKeys, KeySource};
use super::signature::{KeysError, PublicKeys};

/// GitHub's meta endpoint for its secret scanning public keys.
pub const DEFAULT_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";
/// One fetch, connection included, may take this long.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest key list accepted (GitHub's is about 1 KB).
pub const MAX_KEY_LIST_BYTES: usize = 64 * 1024;

pub const KEYS_ENV: &str = "GITHUB_SECRET_SCANNING_KEYS";
pub const KEYS_URL_ENV: &str = "GITHUB_SECRET_SCANNING_KEYS_URL";
pub const TOKEN_ENV: &str = "GITHUB_SECRET_SCANNING_TOKEN";

/// Why the key source could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum KeysConfigError {
    #[error("{KEYS_ENV}: {0}")]
    Keys(#[from] KeysError),
    #[error("{KEYS_URL_ENV} must be an https URL (http only on a loopback host)")]
    Url,
    #[error("{TOKEN_ENV} is not a valid header value")]
    Token,
    #[error("the system's root certificates could not be loaded: {0}")]
    Roots(#[source] std::io::Error),
}

/// Fetches the key list with one GET.
#[derive(Clone)]
pub struct HttpsFetcher {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    url: Uri,
    authorization: Option<HeaderValue>,
}

impl std::fmt::Debug for HttpsFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsFetcher")
            .field("url", &self.url)
            .field("token", &self.authorization.is_some())
            .finish()
    }
}

impl HttpsFetcher {
    /// A fetcher of `url`, sending `token` as a bearer token if given.
    pub fn new(url: &str, token: Option<&str>) -> Result<Self, KeysConfigError> {
        let url = keys_url(url)?;
        let authorization = token
            .map(|t| {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| KeysConfigError::Token)?;
                v.set_sensitive(true);
                Ok::<_, KeysConfigError>(v)
            })
            .transpose()?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(KeysConfigError::Roots)?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpsFetcher {
            client,
            url,
            authorization,
        })
    }

    async fn get(&self) -> Result<Vec<u8>, FetchError> {
        let mut request = Request::get(self.url.clone())
            .header(USER_AGENT, "apikeys-secret-scanning")
            .header(ACCEPT, "application/json");
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| FetchError(Box::new(e)))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError(Box::new(e)))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError(
                format!("the key list answered {}", response.status()).into(),
            ));
        }
        let body = Limited::new(response.into_body(), MAX_KEY_LIST_BYTES)
            .collect()
            .await
            .map_err(FetchError)?;
        Ok(body.to_bytes().to_vec())
    }
}

impl FetchKeys for HttpsFetcher {
    async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        tokio::time::timeout(FETCH_TIMEOUT, self.get())
            .await
            .map_err(|_| FetchError("the key list did not answer in time".into()))?
    }
}

/// Parses the key list URL: `https`, or `http` on a loopback host only (a key list read in
/// clear text could be swapped by anyone on the path).
fn keys_url(url: &str) -> Result<Uri, KeysConfigError> {
    let uri: Uri = url.parse().map_err(|_| KeysConfigError::Url)?;
    let host = uri.host().ok_or(KeysConfigError::Url)?;
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if loopback => Ok(uri),
        _ => Err(KeysConfigError::Url),
    }
}

/// The key source the environment describes (see the module documentation).
pub fn key_source_from_env() -> Result<KeySource<HttpsFetcher>, KeysConfigError> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    key_source(
        var(KEYS_ENV).as_deref(),
        var(KEYS_URL_ENV).as_deref(),
        var(TOKEN_ENV).as_deref(),
    )
}

/// The key source for these settings: the supplied list if any (the URL is then unused),
/// else a fetcher of `url` (GitHub's by default).
pub fn key_source(
    keys: Option<&str>,
    url: Option<&str>,
    token: Option<&str>,
) -> Result<KeySource<HttpsFetcher>, KeysConfigError> {
    match keys {
        Some(json) => Ok(KeySource::with_keys(PublicKeys::parse(json.as_bytes())?)),
        None => Ok(KeySource::fetched(HttpsFetcher::new(
            url.unwrap_or(DEFAULT_KEYS_URL),
            token,
        )?)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::super::signature::SignatureHeaders;
    use super::*;
    use apikeys_tests::github::{Signer, key_list};

    /// Serves one HTTP/1.1 response on 127.0.0.1 and returns the request it read.
    async fn serve_once(status: &str, body: String) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://127.0.0.1:{}/keys",
            listener.local_addr().unwrap().port()
        );
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.ok();
            String::from_utf8_lossy(&request).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn the_fetcher_gets_the_list_and_the_source_verifies_with_it() {
        let github = Signer::named("g");
        let (url, server) = serve_once("200 OK", key_list(&[&github])).await;
        let source = key_source(None, Some(&url), Some("t0ken")).unwrap();
        assert!(!source.is_fixed());
        let body = b"[]";
        let headers = SignatureHeaders {
            key_id: github.key_id.clone(),
            signature: base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                github.sign(body),
            )
            .unwrap(),
        };
        tokio::time::timeout(
            Duration::from_secs(10),
            source.verify(&headers, body, Instant::now()),
        )
        .await
        .expect("bounded")
        .unwrap();
        let request = server.await.unwrap().to_ascii_lowercase();
        assert!(request.starts_with("get /keys http/1.1"), "{request}");
        assert!(request.contains("user-agent: apikeys"), "{request}");
        assert!(request.contains("authorization: bearer t0ken"), "{request}");
    }

    #[tokio::test]
    async fn an_error_status_or_an_oversized_list_is_a_fetch_error() {
        let (url, server) = serve_once("403 Forbidden", "{}".into()).await;
        let fetcher = HttpsFetcher::new(&url, None).unwrap();
        assert!(fetcher.fetch().await.is_err());
        server.await.unwrap();

        let (url, server) = serve_once("200 OK", "x".repeat(MAX_KEY_LIST_BYTES + 1)).await;
        let fetcher = HttpsFetcher::new(&url, None).unwrap();
        assert!(fetcher.fetch().await.is_err());
        server.await.unwrap();
    }

    #[test]
    fn only_https_urls_or_loopback_http_are_accepted() {
        for ok in [
            DEFAULT_KEYS_URL,
            "http://127.0.0.1:8080/keys",
            "http://localhost/keys",
            "http://[::1]:9/k",
        ] {
            assert!(keys_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://api.github.com/meta",
            "ftp://127.0.0.1/",
            "not a url",
            "/relative",
            "http://127.0.0.1.evil.example/",
        ] {
            assert!(matches!(keys_url(bad), Err(KeysConfigError::Url)), "{bad}");
        }
    }

    #[test]
    fn a_supplied_list_wins_and_must_parse() {
        let github = Signer::named("g");
        let source = key_source(
            Some(&key_list(&[&github])),
            Some("http://bad.example/"),
            None,
        )
        .unwrap();
        assert!(source.is_fixed());
        assert!(matches!(
            key_source(Some("{}"), None, None),
            Err(KeysConfigError::Keys(_))
        ));
        assert!(matches!(
            key_source(None, Some("http://github.com/"), None),
            Err(KeysConfigError::Url)
        ));
    }
}
