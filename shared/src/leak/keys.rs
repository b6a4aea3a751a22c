//! Where GitHub's public keys come from, and when they are fetched again.
//!
//! A [`KeySource`] either holds keys supplied once (a parameter, for tests and air-gapped
//! deploys) or fetches them through a [`FetchKeys`] and caches them. Only a report whose key
//! identifier has the shape of GitHub's ([`is_key_identifier`]) and whose signature is
//! well-formed DER ([`is_der_ecdsa_signature`]) may cause a fetch; any other is judged by the
//! keys at hand (a `401`). Such a report fetches:
//! - at the first report after a cold start;
//! - when it names a key identifier the cache does not hold (GitHub rotated its key), but at
//!   most once per [`REFETCH_INTERVAL`], so forged identifiers cannot make it hammer GitHub;
//! - when the cached list is older than [`MAX_KEYS_AGE`], so a key GitHub withdraws stops
//!   being trusted (again at most once per interval; a failed refresh keeps the old list).
//!
//! The cache and its rate limit live in the function instance: the service as a whole fetches
//! at most once per interval per warm instance, as many times a minute as it has instances.
//!
//! The clock is an argument (`now`), so the rate limit is tested without waiting.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::signature::{
    KeysError, PublicKeys, SignatureError, SignatureHeaders, is_der_ecdsa_signature,
    is_key_identifier,
};

/// The least time between two fetches by one function instance.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// A fetched key list is refreshed at the first report after it is this old.
pub const MAX_KEYS_AGE: Duration = Duration::from_secs(3600);

/// Why the keys could not be fetched: worth retrying later.
#[derive(Debug, thiserror::Error)]
#[error("GitHub's public keys could not be fetched: {0}")]
pub struct FetchError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Fetches GitHub's key list document (the raw JSON).
pub trait FetchKeys: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<Vec<u8>, FetchError>> + Send;
}

/// No fetcher: the type of a source whose keys were supplied.
#[derive(Debug, Clone, Copy)]
pub enum NoFetch {}

impl FetchKeys for NoFetch {
    async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
        match *self {}
    }
}

/// Why a report's signature could not be checked or was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Missing, malformed, unknown key, or not matching: `401`.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The key is not known and GitHub's list could not be fetched: `503`, so that GitHub
    /// retries instead of recording a refusal.
    #[error("GitHub's public keys are unavailable")]
    KeysUnavailable,
}

#[derive(Debug, Default)]
struct State {
    keys: Arc<PublicKeys>,
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
    last_failed: bool,
}

/// GitHub's public keys: supplied, or fetched and cached.
#[derive(Debug)]
pub struct KeySource<F> {
    fetcher: Option<F>,
    state: tokio::sync::Mutex<State>,
}

impl KeySource<NoFetch> {
    /// Keys supplied once, never fetched.
    pub fn fixed(keys: PublicKeys) -> Self {
        KeySource::with_keys(keys)
    }
}

impl<F: FetchKeys> KeySource<F> {
    /// Keys supplied once, never fetched, in a source whose type names a fetcher (so that
    /// configuration can return one type either way).
    pub fn with_keys(keys: PublicKeys) -> Self {
        KeySource {
            fetcher: None,
            state: tokio::sync::Mutex::new(State {
                keys: Arc::new(keys),
                ..State::default()
            }),
        }
    }

    /// Keys fetched by `fetcher` when first needed.
    pub fn fetched(fetcher: F) -> Self {
        KeySource {
            fetcher: Some(fetcher),
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Whether the keys were supplied rather than fetched.
    pub fn is_fixed(&self) -> bool {
        self.fetcher.is_none()
    }

    /// The keys to check a signature by `key_id` with, at `now`: the cached list, fetched
    /// again first when the rules in the module documentation say so.
    pub async fn keys_for(
        &self,
        key_id: &str,
        now: Instant,
    ) -> Result<Arc<PublicKeys>, VerifyError> {
        let Some(fetcher) = &self.fetcher else {
            return Ok(self.state.lock().await.keys.clone());
        };
        // Held across the fetch: concurrent reports wait for one fetch instead of each
        // starting their own.
        let mut state = self.state.lock().await;
        if !is_key_identifier(key_id) {
            // GitHub lists no such identifier: no fetch could make it known.
            return Ok(state.keys.clone());
        }
        let known = state.keys.contains(key_id);
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let may_fetch = since(state.last_attempt).is_none_or(|d| d >= REFETCH_INTERVAL);
        let stale = since(state.last_success).is_none_or(|d| d >= MAX_KEYS_AGE);
        if may_fetch && (!known || stale) {
            state.last_attempt = Some(now);
            match fetch_and_parse(fetcher).await {
                Ok(keys) => {
                    tracing::info!(keys = keys.len(), "fetched GitHub's secret scanning keys");
                    state.keys = Arc::new(keys);
                    state.last_success = Some(now);
                    state.last_failed = false;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not fetch GitHub's secret scanning keys");
                    state.last_failed = true;
                }
            }
        }
        if !state.keys.contains(key_id) && state.last_failed {
            // GitHub may have rotated to a key we could not fetch: not the sender's fault.
            return Err(VerifyError::KeysUnavailable);
        }
        Ok(state.keys.clone())
    }

    /// Checks a report's signature at `now`. A signature that is not DER is refused before
    /// the keys are looked at, so it never causes a fetch.
    pub async fn verify(
        &self,
        headers: &SignatureHeaders,
        body: &[u8],
        now: Instant,
    ) -> Result<(), VerifyError> {
        if !is_der_ecdsa_signature(&headers.signature) {
            return Err(SignatureError::MalformedSignature.into());
        }
        let keys = self.keys_for(&headers.key_id, now).await?;
        Ok(keys.verify(headers, body)?)
    }
}

/// Why fetched keys were not usable.
#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Keys(#[from] KeysError),
}

async fn fetch_and_parse<F: FetchKeys>(fetcher: &F) -> Result<PublicKeys, RefreshError> {
    let json = fetcher.fetch().await?;
    Ok(PublicKeys::parse(&json)?)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use apikeys_tests::github::{Signer, key_list};

    /// Serves whatever list it is given, counting fetches; `None` fails.
    #[derive(Default)]
    struct Scripted {
        list: Mutex<Option<String>>,
        fetches: AtomicUsize,
    }

    impl Scripted {
        fn serve(&self, list: Option<String>) {
            *self.list.lock().unwrap() = list;
        }
        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    impl FetchKeys for &Scripted {
        async fn fetch(&self) -> Result<Vec<u8>, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            match self.list.lock().unwrap().clone() {
                Some(list) => Ok(list.into_bytes()),
                None => Err(FetchError("unreachable".into())),
            }
        }
    }

    const BODY: &[u8] = b"[]";

    fn signed(signer: &Signer) -> SignatureHeaders {
        SignatureHeaders {
            key_id: signer.key_id.clone(),
            signature: base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                signer.sign(BODY),
            )
            .unwrap(),
        }
    }

    #[tokio::test]
    async fn keys_are_fetched_once_and_then_served_from_the_cache() {
        let github = Signer::named("g1");
        let fetcher = Scripted::default();
        fetcher.serve(Some(key_list(&[&github])));
        let source = KeySource::fetched(&fetcher);
        let t0 = Instant::now();
        source.verify(&signed(&github), BODY, t0).await.unwrap();
        assert_eq!(fetcher.fetches(), 1);
        for s in [1, 59, 61, 3599] {
            source
                .verify(&signed(&github), BODY, t0 + Duration::from_secs(s))
                .await
                .unwrap();
        }
        assert_eq!(fetcher.fetches(), 1, "a known key needs no fetch");
    }

    #[tokio::test]
    async fn an_unknown_identifier_fetches_again_at_most_once_a_minute() {
        let old = Signer::named("old");
        let new = Signer::named("new");
        let forged = Signer::named("forged");
        let fetcher = Scripted::default();
        fetcher.serve(Some(key_list(&[&old])));
        let source = KeySource::fetched(&fetcher);
        let t0 = Instant::now();
        source.verify(&signed(&old), BODY, t0).await.unwrap();

        // Forged identifiers within the minute: refused without fetching.
        for s in [1, 30, 59] {
            let at = t0 + Duration::from_secs(s);
            let err = source.verify(&signed(&forged), BODY, at).await.unwrap_err();
            assert!(matches!(
                err,
                VerifyError::Signature(SignatureError::UnknownKey)
            ));
        }
        assert_eq!(fetcher.fetches(), 1);

        // GitHub rotates; the first report with the new identifier after the minute fetches.
        fetcher.serve(Some(key_list(&[&new, &old])));
        let t1 = t0 + REFETCH_INTERVAL;
        source.verify(&signed(&new), BODY, t1).await.unwrap();
        assert_eq!(fetcher.fetches(), 2);

        // Another unknown identifier right after: no fetch until a minute after the last.
        let err = source
            .verify(&signed(&forged), BODY, t1 + Duration::from_secs(59))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Signature(SignatureError::UnknownKey)
        ));
        assert_eq!(fetcher.fetches(), 2);
        source
            .verify(&signed(&forged), BODY, t1 + REFETCH_INTERVAL)
            .await
            .unwrap_err();
        assert_eq!(fetcher.fetches(), 3);
        // Keys kept from the earlier list still verify.
        source
            .verify(&signed(&old), BODY, t1 + REFETCH_INTERVAL)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_malformed_identifier_or_signature_is_a_401_without_a_fetch() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        use lambda_http::http::{HeaderMap, HeaderValue, header};

        use crate::http::leaks::receive_report;
        use crate::http::problem::ApiError;
        use crate::leak::signature::{KEY_ID_HEADER, SIGNATURE_HEADER};

        let report = |key_id: &str, signature: &str| {
            let mut h = HeaderMap::new();
            h.insert(KEY_ID_HEADER, HeaderValue::from_str(key_id).unwrap());
            h.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).unwrap());
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h
        };
        let github = Signer::named("github");
        let id = github.key_id.as_str();
        let good = github.sign(BODY);
        let der = STANDARD.decode(&good).unwrap();
        let cases: [(String, String, &str); 7] = [
            ("apikeys-local-test-key".into(), good.clone(), "not hex"),
            (id[..63].to_owned(), good.clone(), "63 hex digits"),
            (format!("{id}0"), good.clone(), "65 hex digits"),
            (format!("{}g", &id[..63]), good.clone(), "a letter past f"),
            (
                id.into(),
                STANDARD.encode("not a signature"),
                "base64, not DER",
            ),
            (
                id.into(),
                STANDARD.encode(&der[..der.len() - 1]),
                "DER cut short",
            ),
            (
                id.into(),
                STANDARD.encode([&der[..], &[0]].concat()),
                "DER and more",
            ),
        ];

        // GitHub is unreachable and nothing is cached: were any of these to fetch, it would
        // be a 503 ("try again"), not a 401.
        let fetcher = Scripted::default();
        let source = KeySource::fetched(&fetcher);
        let t0 = Instant::now();
        // A minute apart, and later an hour: the rate limit never stands in the way.
        let mut at = t0;
        for (key_id, signature, what) in &cases {
            at += REFETCH_INTERVAL;
            let err = receive_report(&source, &report(key_id, signature), BODY, at)
                .await
                .unwrap_err();
            assert!(matches!(err, ApiError::Signature(_)), "{what}: {err:?}");
        }
        // Headers built past the edge are held to the same rule.
        at += REFETCH_INTERVAL;
        let not_der = SignatureHeaders {
            key_id: id.to_owned(),
            signature: b"not a signature".to_vec(),
        };
        let err = source.verify(&not_der, BODY, at).await.unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Signature(SignatureError::MalformedSignature)
        ));
        assert_eq!(fetcher.fetches(), 0);

        // A well-formed report fetches: here, GitHub being unreachable, a 503.
        at += REFETCH_INTERVAL;
        let err = receive_report(&source, &report(id, &good), BODY, at)
            .await
            .unwrap_err();
        assert!(matches!(err, ApiError::KeysUnavailable), "{err:?}");
        assert_eq!(fetcher.fetches(), 1);

        // With the keys fetched and, later, old: still no fetch for a malformed report.
        fetcher.serve(Some(key_list(&[&github])));
        at += REFETCH_INTERVAL;
        receive_report(&source, &report(id, &good), BODY, at)
            .await
            .unwrap();
        assert_eq!(fetcher.fetches(), 2);
        for (key_id, signature, what) in &cases {
            at += MAX_KEYS_AGE;
            let err = receive_report(&source, &report(key_id, signature), BODY, at)
                .await
                .unwrap_err();
            assert!(matches!(err, ApiError::Signature(_)), "{what}: {err:?}");
        }
        assert_eq!(fetcher.fetches(), 2);
    }

    #[tokio::test]
    async fn a_failed_fetch_is_a_503_for_unknown_keys_and_old_keys_keep_working() {
        let github = Signer::named("g");
        let fetcher = Scripted::default();
        let source = KeySource::fetched(&fetcher);
        let t0 = Instant::now();
        // Cold start with GitHub unreachable: nothing is known, nothing can be decided.
        let err = source.verify(&signed(&github), BODY, t0).await.unwrap_err();
        assert!(matches!(err, VerifyError::KeysUnavailable));
        // Still rate limited, still unavailable rather than a refusal.
        let err = source
            .verify(&signed(&github), BODY, t0 + Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(matches!(err, VerifyError::KeysUnavailable));
        assert_eq!(fetcher.fetches(), 1);

        fetcher.serve(Some(key_list(&[&github])));
        let t1 = t0 + REFETCH_INTERVAL;
        source.verify(&signed(&github), BODY, t1).await.unwrap();

        // The list grows old and the refresh fails: the cached keys still verify.
        fetcher.serve(None);
        let t2 = t1 + MAX_KEYS_AGE;
        source.verify(&signed(&github), BODY, t2).await.unwrap();
        assert_eq!(fetcher.fetches(), 3, "a stale list is refreshed");
        source
            .verify(&signed(&github), BODY, t2 + Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(fetcher.fetches(), 3, "and not again within the minute");
    }

    #[tokio::test]
    async fn a_withdrawn_key_stops_verifying_once_the_list_is_refreshed() {
        let old = Signer::named("old");
        let new = Signer::named("new");
        let fetcher = Scripted::default();
        fetcher.serve(Some(key_list(&[&old])));
        let source = KeySource::fetched(&fetcher);
        let t0 = Instant::now();
        source.verify(&signed(&old), BODY, t0).await.unwrap();
        fetcher.serve(Some(key_list(&[&new])));
        source
            .verify(
                &signed(&old),
                BODY,
                t0 + MAX_KEYS_AGE - Duration::from_secs(1),
            )
            .await
            .unwrap();
        let err = source
            .verify(&signed(&old), BODY, t0 + MAX_KEYS_AGE)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Signature(SignatureError::UnknownKey)
        ));
    }

    #[tokio::test]
    async fn supplied_keys_are_never_fetched_and_unknown_ids_are_refused() {
        let github = Signer::named("g");
        let other = Signer::named("other");
        let keys = PublicKeys::parse(key_list(&[&github]).as_bytes()).unwrap();
        let source = KeySource::fixed(keys);
        assert!(source.is_fixed());
        let t0 = Instant::now();
        source.verify(&signed(&github), BODY, t0).await.unwrap();
        let err = source.verify(&signed(&other), BODY, t0).await.unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Signature(SignatureError::UnknownKey)
        ));
        let mut bad = signed(&github);
        bad.signature = signed(&other).signature;
        let err = source.verify(&bad, BODY, t0).await.unwrap_err();
        assert!(matches!(
            err,
            VerifyError::Signature(SignatureError::BadSignature)
        ));
    }

    #[tokio::test]
    async fn a_supplied_list_may_name_its_keys_in_any_shape() {
        // The local environment's key is "apikeys-local-test-key": never fetched, so the
        // shape of GitHub's identifiers does not apply.
        let mut local = Signer::named("local");
        local.key_id = "apikeys-local-test-key".into();
        let keys = PublicKeys::parse(key_list(&[&local]).as_bytes()).unwrap();
        let source = KeySource::fixed(keys);
        source
            .verify(&signed(&local), BODY, Instant::now())
            .await
            .unwrap();
    }
}
