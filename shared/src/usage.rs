//! Recording when a key was last used, without ever slowing or failing the request.
//!
//! Each authenticated request may stamp its key (`last_used_date`), at most once per
//! [`LAST_USED_RESOLUTION_SECS`]. The write runs alongside the request's own read, and the
//! request waits for it at most [`WAIT`]: a slow, throttled or failing write costs a request
//! no more than that. After a failure the caller's next attempt waits [`BACKOFF`], so a failing
//! store never gets more last-use writes than a healthy one would. Each failure is one log
//! line in embedded metric format, the CloudWatch metric `LastUseFailures`.
//!
//! The back-off is per caller, in this process: DynamoDB throttles per partition, and a key's
//! items live in its organization's partition and its credential's, so one organization's
//! throttled writes do not stop the stamps of the others. When the whole table refuses writes,
//! each caller pays one bounded attempt per [`BACKOFF`], and the metric's alarm fires. The
//! back-off is a [`TtlMap`], so it follows the clock rule of every cache ([`crate::cache`]):
//! a wall clock that stepped back ends a back-off rather than stretch it.
//!
//! What is recorded is a [`KeyUse`]: an authenticated caller ([`Caller`]) and a verified key
//! ([`KeyUse::of`] its credential) both give one.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, json};

use crate::auth::Caller;
use crate::cache::{Moment, TtlMap};
use crate::key::{KeyId, OrgId};
use crate::secret::SecretHash;
use crate::store::{Credential, CredentialStore, StoreError};
use crate::telemetry::MetricSink;

/// How precisely `last_used_date` is kept: a key used again within this many seconds of its
/// recorded last use is not written again.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

/// The longest a request waits for its last-use write. The write starts with the request's
/// own read, so it delays the response by at most this much, and only when the read is
/// quicker. A DynamoDB write in the same region takes a few milliseconds.
pub const WAIT: Duration = Duration::from_millis(50);

/// After a failed write, how long the caller's uses go unrecorded: one resolution step, the
/// same pace as a successful write.
pub const BACKOFF: TimeDelta = TimeDelta::seconds(LAST_USED_RESOLUTION_SECS);

/// The most callers kept in back-off at once; past it, the ones whose back-off is over are
/// dropped, and if that is not enough, all of them (they then try once more).
pub const MAX_BACKING_OFF: usize = 4096;

/// The name of the failure metric, in namespace `apikeys`, dimension `FunctionName`.
pub const FAILURE_METRIC: &str = "LastUseFailures";

/// A use of a key: what recording it needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyUse<'a> {
    pub org: &'a OrgId,
    pub key_id: KeyId,
    /// The hash of the secret presented: where its credential item lives.
    pub hash: &'a SecretHash,
    /// When the key was last used, as its credential says.
    pub last_used: Option<DateTime<Utc>>,
}

impl<'a> KeyUse<'a> {
    /// A use of the key that `credential` (of the secret hashed `hash`) belongs to.
    pub fn of(credential: &'a Credential, hash: &'a SecretHash) -> Self {
        KeyUse {
            org: &credential.org,
            key_id: credential.key_id,
            hash,
            last_used: credential.last_used,
        }
    }
}

impl<'a> From<&'a Caller> for KeyUse<'a> {
    fn from(caller: &'a Caller) -> Self {
        KeyUse {
            org: &caller.org,
            key_id: caller.key_id,
            hash: &caller.hash,
            last_used: caller.last_used,
        }
    }
}

/// Records last uses for one process (see the module header).
#[derive(Debug)]
pub struct Recorder {
    wait: Duration,
    /// Callers whose last write failed less than [`BACKOFF`] ago.
    backing_off: TtlMap<KeyId, ()>,
    metrics: MetricSink,
}

impl Default for Recorder {
    /// What the functions use: [`WAIT`], metric lines on stdout.
    fn default() -> Self {
        Recorder::new(WAIT, MetricSink::Stdout)
    }
}

impl Recorder {
    /// A recorder whose requests wait at most `wait` for a write, counting failures in
    /// `metrics`.
    pub fn new(wait: Duration, metrics: MetricSink) -> Self {
        Recorder {
            wait,
            backing_off: TtlMap::new(BACKOFF.to_std().unwrap_or_default(), MAX_BACKING_OFF),
            metrics,
        }
    }

    /// Where this recorder counts its failures.
    pub fn metrics(&self) -> &MetricSink {
        &self.metrics
    }

    /// Records that the caller's key was used at `now`, unless the credential says it was
    /// used less than [`LAST_USED_RESOLUTION_SECS`] ago or the caller is backing off after
    /// a failure. Takes at most the recorder's wait, and never fails: a failure is counted
    /// and logged, and the request goes on.
    pub async fn record<S: CredentialStore>(
        &self,
        store: &S,
        used: &KeyUse<'_>,
        now: DateTime<Utc>,
    ) {
        let stale_before = now - TimeDelta::seconds(LAST_USED_RESOLUTION_SECS);
        let moment = Moment {
            wall: now,
            mono: tokio::time::Instant::now(),
        };
        if used.last_used.is_some_and(|t| t >= stale_before)
            || self.backing_off(used.key_id, moment)
        {
            return;
        }
        let write = store.record_use(used.org, used.key_id, used.hash, now, stale_before);
        let (reason, error) = match tokio::time::timeout(self.wait, write).await {
            Ok(Ok(_)) => return,
            Ok(Err(err @ StoreError::Unavailable(_))) => ("unavailable", err),
            Ok(Err(err @ StoreError::Internal(_))) => ("error", err),
            Err(_) => (
                "timeout",
                StoreError::Unavailable(format!("no answer within {:?}", self.wait).into()),
            ),
        };
        self.back_off(used.key_id, moment);
        let mut context = Map::new();
        context.insert(
            "message".into(),
            json!("could not record the key's last use"),
        );
        context.insert("reason".into(), json!(reason));
        context.insert("error".into(), json!(crate::telemetry::error_chain(&error)));
        context.insert("org".into(), json!(used.org.to_string()));
        context.insert("caller".into(), json!(used.key_id.to_string()));
        self.metrics.count(FAILURE_METRIC, now, context);
    }

    /// Whether the caller's last write failed less than [`BACKOFF`] before `now`.
    fn backing_off(&self, key_id: KeyId, now: Moment) -> bool {
        self.backing_off.get(&key_id, now).is_some()
    }

    fn back_off(&self, key_id: KeyId, now: Moment) {
        self.backing_off.insert(key_id, (), now);
    }

    /// How many callers are backing off (expired entries included until they are dropped).
    pub fn backing_off_len(&self) -> usize {
        self.backing_off.len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::key::{Access, ApiKey};
    use crate::secret::Secret;
    use crate::store::KeyReader;
    use crate::store::memory::MemoryStore;

    async fn store_with_key() -> (MemoryStore, ApiKey, Secret) {
        let store = MemoryStore::default();
        let new = crate::write::NewKey {
            org: "o".parse().unwrap(),
            name: "k".into(),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let (key, secret) = crate::write::create_key(&store, new).await.unwrap();
        (store, key, secret)
    }

    fn caller(key: &ApiKey, secret: &Secret, last_used: Option<DateTime<Utc>>) -> Caller {
        Caller {
            org: key.org.clone(),
            key_id: key.id,
            access: key.access.clone(),
            hash: secret.hash(),
            last_used,
            expires: key.expires,
            secret: crate::audit::ActingSecret {
                which: crate::audit::WhichSecret::Current,
                last_four: secret.last_four(),
            },
            quota: Default::default(),
            allowed_cidrs: None,
            owner_id: None,
        }
    }

    async fn last_used(store: &MemoryStore, key: &ApiKey) -> Option<DateTime<Utc>> {
        store
            .get_key(&key.org, key.id)
            .await
            .unwrap()
            .unwrap()
            .last_used
    }

    fn recorder() -> Recorder {
        Recorder::new(WAIT, MetricSink::memory())
    }

    fn failures(recorder: &Recorder) -> Vec<serde_json::Value> {
        recorder
            .metrics()
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_use_is_recorded_at_most_once_a_minute() {
        let (store, key, secret) = store_with_key().await;
        let recorder = recorder();
        let now = Utc::now();
        recorder
            .record(&store, &KeyUse::from(&caller(&key, &secret, None)), now)
            .await;
        assert_eq!(last_used(&store, &key).await, Some(now));

        // The credential says it was used 59 s ago: no write, even though the store could.
        let later = now + TimeDelta::seconds(30);
        let recent = caller(&key, &secret, Some(later - TimeDelta::seconds(59)));
        recorder.record(&store, &KeyUse::from(&recent), later).await;
        assert_eq!(last_used(&store, &key).await, Some(now));
        assert_eq!(store.record_use_calls.load(Ordering::SeqCst), 1);

        // A stale credential (a cache, say) still cannot make the store write twice a minute.
        recorder
            .record(&store, &KeyUse::from(&caller(&key, &secret, None)), later)
            .await;
        assert_eq!(last_used(&store, &key).await, Some(now));

        let much_later = now + TimeDelta::seconds(61);
        recorder
            .record(
                &store,
                &KeyUse::from(&caller(&key, &secret, Some(now))),
                much_later,
            )
            .await;
        assert_eq!(last_used(&store, &key).await, Some(much_later));
        assert!(failures(&recorder).is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_is_one_metric_line_and_the_caller_backs_off_for_a_minute() {
        let (store, key, secret) = store_with_key().await;
        let (other, other_secret) = crate::write::create_key(
            &store,
            crate::write::NewKey {
                org: "o".parse().unwrap(),
                name: "other".into(),
                creator_id: uuid::Uuid::nil(),
                access: Access::Unrestricted,
                expires: None,
                id: None,
                quota: Default::default(),
                owner_id: None,
                meta: None,
                allowed_cidrs: None,
            },
        )
        .await
        .unwrap();
        let recorder = recorder();
        store.fail_record_use.store(true, Ordering::SeqCst);
        let now = Utc::now();
        let me = caller(&key, &secret, None);
        recorder.record(&store, &KeyUse::from(&me), now).await;
        assert_eq!(last_used(&store, &key).await, None);
        let lines = failures(&recorder);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0][FAILURE_METRIC], 1);
        assert_eq!(lines[0]["reason"], "unavailable");
        assert_eq!(lines[0]["caller"], key.id.to_string());
        assert!(
            !lines[0].to_string().contains(secret.hash().as_str()),
            "no hash in a log line"
        );

        // Within the minute, the same caller's uses are not written: no attempt, no line.
        store.fail_record_use.store(false, Ordering::SeqCst);
        let calls = store.record_use_calls.load(Ordering::SeqCst);
        recorder
            .record(
                &store,
                &KeyUse::from(&me),
                now + BACKOFF - TimeDelta::seconds(1),
            )
            .await;
        assert_eq!(store.record_use_calls.load(Ordering::SeqCst), calls);
        assert_eq!(last_used(&store, &key).await, None);
        // Another caller is not held back.
        let them = now + TimeDelta::seconds(1);
        recorder
            .record(
                &store,
                &KeyUse::from(&caller(&other, &other_secret, None)),
                them,
            )
            .await;
        assert_eq!(last_used(&store, &other).await, Some(them));

        // A minute after the failure, the caller's next use is written.
        let then = now + BACKOFF;
        recorder.record(&store, &KeyUse::from(&me), then).await;
        assert_eq!(last_used(&store, &key).await, Some(then));
        assert_eq!(failures(&recorder).len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_does_not_answer_holds_the_request_up_for_the_wait_only() {
        let (store, key, secret) = store_with_key().await;
        let recorder = recorder();
        store.stall_record_use.store(true, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        recorder
            .record(
                &store,
                &KeyUse::from(&caller(&key, &secret, None)),
                Utc::now(),
            )
            .await;
        assert_eq!(started.elapsed(), WAIT);
        let lines = failures(&recorder);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["reason"], "timeout");
    }

    #[tokio::test]
    async fn a_clock_stepped_back_does_not_stretch_the_back_off() {
        let (store, key, secret) = store_with_key().await;
        let recorder = recorder();
        store.fail_record_use.store(true, Ordering::SeqCst);
        let now = Utc::now();
        let me = caller(&key, &secret, None);
        recorder.record(&store, &KeyUse::from(&me), now).await;
        store.fail_record_use.store(false, Ordering::SeqCst);
        // The wall clock goes back an hour: the entry looks 61 minutes long, so it is over.
        let back = now - TimeDelta::hours(1);
        recorder.record(&store, &KeyUse::from(&me), back).await;
        assert_eq!(last_used(&store, &key).await, Some(back));
    }

    #[tokio::test]
    async fn a_verified_credential_is_recorded_as_its_caller_would_be() {
        let (store, key, secret) = store_with_key().await;
        let hash = secret.hash();
        let credential = store.find_credential(&hash).await.unwrap().unwrap();
        let caller = caller(&key, &secret, None);
        assert_eq!(KeyUse::of(&credential, &hash), KeyUse::from(&caller));
        let recorder = recorder();
        let now = Utc::now();
        recorder
            .record(&store, &KeyUse::of(&credential, &hash), now)
            .await;
        assert_eq!(last_used(&store, &key).await, Some(now));
    }

    #[test]
    fn the_back_off_list_stays_bounded() {
        let recorder = recorder();
        let moment = Moment::now();
        let mut someone = Caller {
            org: "o".parse().unwrap(),
            key_id: KeyId::generate(),
            access: Access::Unrestricted,
            hash: Secret::from_random([1; 24]).hash(),
            last_used: None,
            expires: None,
            secret: crate::audit::ActingSecret {
                which: crate::audit::WhichSecret::Current,
                last_four: "abcd".into(),
            },
            quota: Default::default(),
            allowed_cidrs: None,
            owner_id: None,
        };
        for i in 0..MAX_BACKING_OFF as u128 + 10 {
            someone.key_id = KeyId::from(uuid::Uuid::from_u128(i));
            recorder.back_off(someone.key_id, moment);
        }
        assert!(recorder.backing_off_len() <= MAX_BACKING_OFF);
        assert!(
            recorder.backing_off(someone.key_id, moment),
            "the latest failure is kept"
        );
    }
}
