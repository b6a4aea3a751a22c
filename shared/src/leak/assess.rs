//! What each reported token is, what GitHub is told about it, and which keys to revoke.
//!
//! A token is **ours** when a key of this service holds it as a secret: its current one, or
//! a previous one a roll has not yet dropped. Every such token gets `true_positive`, whatever
//! its key's status, and its key is revoked: disabled, the secret marked leaked on it, and a
//! `key.leaked` audit event. A key disabled or expired before the report is marked too, so
//! that enabling it or extending it later cannot revive a secret known to be public; so is
//! a second secret of a key already revoked.
//!
//! Everything else gets `false_positive`, with no change: a token not shaped like our
//! secrets (prefix and checksum, checked without a read), and a secret no key holds (never
//! issued, deleted, from another deployment, or dropped after its grace).
//!
//! A replayed report stays idempotent: a secret already marked on its (disabled) key is
//! `true_positive` again and is not revoked again. GitHub is told the same thing twice, and
//! the audit trail records one event.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use super::report::ReportedToken;
use crate::key::{KeyId, OrgId};
use crate::secret::{Secret, SecretHash};
use crate::store::{Candidate, Credential, LeakLookup, StoreError};

/// GitHub's verdict labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    TruePositive,
    FalsePositive,
}

/// One element of the response: GitHub's `{token_hash, token_type, label}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// Hex SHA-256 of the token as reported.
    pub token_hash: String,
    pub token_type: String,
    pub label: Label,
}

/// What one reported token turned out to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not shaped like our secrets: decided without a read.
    NotOurs,
    /// Shaped like ours, but no key holds it.
    Unknown,
    /// A secret of ours, not yet marked: its key is to be revoked and the secret marked,
    /// whatever the key's status.
    Ours(Credential),
    /// A secret marked leaked on its disabled key before (a replayed or repeated report).
    AlreadyRevoked(Credential),
}

impl Verdict {
    pub fn label(&self) -> Label {
        match self {
            Verdict::Ours(_) | Verdict::AlreadyRevoked(_) => Label::TruePositive,
            Verdict::NotOurs | Verdict::Unknown => Label::FalsePositive,
        }
    }
}

/// A key whose secret was found in public: what its revocation records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeakedKey {
    pub org: OrgId,
    pub key_id: KeyId,
    /// The leaked secret's hash (the key's current or previous secret).
    pub hash: SecretHash,
    /// Where GitHub found it, as reported (first report of this key in the batch).
    pub url: String,
    pub source: String,
}

/// The outcome of a report: GitHub's response, in report order, and the secrets to revoke,
/// one per secret even when it was reported several times (two secrets of one key are two
/// revocations, each marking its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub verdicts: Vec<Verdict>,
    pub feedback: Vec<Feedback>,
    pub to_revoke: Vec<LeakedKey>,
}

/// Decides every token of a report, with at most one lookup.
pub async fn assess<L: LeakLookup>(
    lookup: &L,
    report: &[ReportedToken],
) -> Result<Assessment, StoreError> {
    let hashes: Vec<Option<SecretHash>> = report
        .iter()
        .map(|r| Secret::parse(&r.token).ok().map(|s| s.hash()))
        .collect();
    let mut distinct: Vec<SecretHash> = Vec::new();
    let mut seen = HashSet::new();
    for hash in hashes.iter().flatten() {
        if seen.insert(hash) {
            distinct.push(hash.clone());
        }
    }
    let found = if distinct.is_empty() {
        HashMap::new()
    } else {
        lookup.find_candidates(&distinct).await?
    };

    let mut assessment = Assessment {
        verdicts: Vec::with_capacity(report.len()),
        feedback: Vec::with_capacity(report.len()),
        to_revoke: Vec::new(),
    };
    let mut revoked: HashSet<SecretHash> = HashSet::new();
    for (reported, hash) in report.iter().zip(hashes) {
        let verdict = match &hash {
            None => Verdict::NotOurs,
            Some(hash) => match found.get(hash) {
                None => Verdict::Unknown,
                Some(candidate) => verdict_of(candidate),
            },
        };
        if let (Verdict::Ours(credential), Some(hash)) = (&verdict, &hash)
            && revoked.insert(hash.clone())
        {
            assessment.to_revoke.push(LeakedKey {
                org: credential.org.clone(),
                key_id: credential.key_id,
                hash: hash.clone(),
                url: reported.url.clone(),
                source: reported.source.clone(),
            });
        }
        assessment.feedback.push(Feedback {
            token_hash: token_hash(&reported.token),
            token_type: reported.token_type.clone(),
            label: verdict.label(),
        });
        assessment.verdicts.push(verdict);
    }
    Ok(assessment)
}

fn verdict_of(candidate: &Candidate) -> Verdict {
    let credential = candidate.credential.clone();
    if candidate.marked {
        Verdict::AlreadyRevoked(credential)
    } else {
        Verdict::Ours(credential)
    }
}

/// The hex SHA-256 of a token as reported: for one of our secrets, the hash we store.
pub fn token_hash(token: &str) -> String {
    crate::digest::sha256_hex(token.as_bytes(), 32)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use chrono::{DateTime, Duration, Utc};

    use super::*;
    use crate::audit::Leak;
    use crate::key::{Access, KeyState};
    use crate::store::KeyWriter;
    use crate::store::memory::MemoryStore;
    use crate::write::{
        NewKey, WriteContext, WriteError, WritePolicy, create_key_with_secret, delete_key,
        revoke_leaked, roll_key, set_state,
    };

    fn reported(token: &str, url: &str) -> ReportedToken {
        ReportedToken {
            token: token.into(),
            token_type: "apikeys_api_key".into(),
            url: url.into(),
            source: "content".into(),
        }
    }

    /// A memory store that counts the lookups.
    #[derive(Default)]
    struct Counting {
        store: MemoryStore,
        calls: AtomicUsize,
    }

    impl LeakLookup for Counting {
        async fn find_candidates(
            &self,
            hashes: &[SecretHash],
        ) -> Result<HashMap<SecretHash, Candidate>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.store.find_candidates(hashes).await
        }
    }

    async fn key(
        store: &MemoryStore,
        org: &str,
        seed: u8,
        expires: Option<DateTime<Utc>>,
    ) -> (KeyId, Secret) {
        let secret = Secret::from_random([seed; 24]);
        let new = NewKey {
            org: org.parse().unwrap(),
            name: format!("k{seed}"),
            creator_id: uuid::Uuid::nil(),
            access: Access::Unrestricted,
            expires,
            id: None,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        };
        let key = create_key_with_secret(store, new, &secret).await.unwrap();
        (key.id, secret)
    }

    async fn revoke(store: &MemoryStore, leak: &LeakedKey) {
        let ctx = WriteContext::github("r1");
        let found = Leak {
            url: leak.url.clone(),
            source: leak.source.clone(),
        };
        revoke_leaked(
            store,
            &WritePolicy::default(),
            &ctx,
            &leak.org,
            leak.key_id,
            &leak.hash,
            &found,
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn every_secret_of_ours_is_a_true_positive_whatever_its_keys_status() {
        let lookup = Counting::default();
        let store = &lookup.store;
        let now = Utc::now();
        let (live, live_secret) = key(store, "acme", 1, None).await;
        let (disabled, disabled_secret) = key(store, "acme", 2, None).await;
        let (expired, expired_secret) =
            key(store, "acme", 3, Some(now + Duration::seconds(1))).await;
        let (deleted, deleted_secret) = key(store, "acme", 4, None).await;
        let (other_live, other_secret) =
            key(store, "globex", 5, Some(now + Duration::days(1))).await;
        let acme = "acme".parse().unwrap();
        let (policy, ctx) = (WritePolicy::default(), WriteContext::cli());
        set_state(store, &policy, &ctx, &acme, disabled, KeyState::Disabled)
            .await
            .unwrap();
        delete_key(store, &policy, &ctx, &acme, deleted, None)
            .await
            .unwrap();
        let never_issued = Secret::from_random([9; 24]);
        let mut tampered = live_secret.expose().to_owned();
        tampered.replace_range(10..11, if &tampered[10..11] == "A" { "B" } else { "A" });

        let report = vec![
            reported(live_secret.expose(), "https://github.com/a/b/blob/1/.env"),
            reported(disabled_secret.expose(), ""),
            reported(expired_secret.expose(), ""),
            reported(deleted_secret.expose(), ""),
            reported(never_issued.expose(), ""),
            reported(other_secret.expose(), "https://gist.github.com/x"),
            reported("ghp_notoursatall", ""),
            reported(&tampered, ""),
            reported(live_secret.expose(), "https://github.com/a/b/blob/2/.env"),
        ];
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let a = assess(&lookup, &report).await.unwrap();
        let labels: Vec<Label> = a.feedback.iter().map(|f| f.label).collect();
        use Label::{FalsePositive as F, TruePositive as T};
        assert_eq!(labels, [T, T, T, F, F, T, F, F, T]);
        assert!(matches!(a.verdicts[1], Verdict::Ours(_)));
        assert!(matches!(a.verdicts[2], Verdict::Ours(_)));
        assert_eq!(a.verdicts[3], Verdict::Unknown);
        assert_eq!(a.verdicts[4], Verdict::Unknown);
        assert_eq!(a.verdicts[6], Verdict::NotOurs);
        assert_eq!(a.verdicts[7], Verdict::NotOurs);
        // One revocation per secret, with where it was first found: the disabled and the
        // expired key's too, so that neither can be revived.
        let revoked: Vec<(KeyId, &str)> = a
            .to_revoke
            .iter()
            .map(|l| (l.key_id, l.url.as_str()))
            .collect();
        assert_eq!(
            revoked,
            [
                (live, "https://github.com/a/b/blob/1/.env"),
                (disabled, ""),
                (expired, ""),
                (other_live, "https://gist.github.com/x")
            ]
        );
        assert_eq!(a.to_revoke[3].org.as_str(), "globex");
        assert_eq!(a.to_revoke[0].hash, live_secret.hash());
        assert_eq!(
            lookup.calls.load(Ordering::SeqCst),
            1,
            "one lookup per report"
        );
        // token_hash is the hex SHA-256 of each token as reported, ours or not.
        for (f, r) in a.feedback.iter().zip(&report) {
            assert_eq!(f.token_hash, token_hash(&r.token));
            assert_eq!(f.token_type, "apikeys_api_key");
        }
        assert_eq!(a.feedback[0].token_hash, live_secret.hash().as_str());
        // A known answer, computed independently (Python's hashlib).
        assert_eq!(
            token_hash("some_token"),
            "9a45520a1213f15016d2d768b5fb3d904492a44ee274b44d4de8803e00fb536a"
        );
    }

    #[tokio::test]
    async fn a_replayed_report_gets_the_same_labels_and_revokes_nothing_more() {
        let lookup = Counting::default();
        let (_, secret) = key(&lookup.store, "acme", 1, None).await;
        let report = vec![reported(secret.expose(), "u"), reported("nope", "")];
        let first = assess(&lookup, &report).await.unwrap();
        assert_eq!(first.to_revoke.len(), 1);
        revoke(&lookup.store, &first.to_revoke[0]).await;
        let replay = assess(&lookup, &report).await.unwrap();
        assert_eq!(replay.feedback, first.feedback);
        assert!(replay.to_revoke.is_empty());
        assert!(matches!(replay.verdicts[0], Verdict::AlreadyRevoked(_)));

        // Its owner, even the operator, cannot enable it while the leaked secret is its own.
        let c = &first.to_revoke[0];
        let (policy, ctx) = (WritePolicy::default(), WriteContext::cli());
        let store = &lookup.store;
        let enable = set_state(store, &policy, &ctx, &c.org, c.key_id, KeyState::Active).await;
        assert!(
            matches!(enable, Err(WriteError::LeakedSecret)),
            "{enable:?}"
        );
        // A roll drops the leaked secret at once, whatever grace it asks for; then the key
        // may be enabled, and the leaked secret is no longer ours.
        let rolled = roll_key(store, &policy, &ctx, &c.org, c.key_id, 3600, None, None)
            .await
            .unwrap();
        assert!(
            store
                .key_for_write(&c.org, c.key_id)
                .await
                .unwrap()
                .unwrap()
                .previous
                .is_none()
        );
        assert_eq!(rolled.key.state, KeyState::Disabled);
        set_state(store, &policy, &ctx, &c.org, c.key_id, KeyState::Active)
            .await
            .unwrap();
        let again = assess(&lookup, &report).await.unwrap();
        assert_eq!(again.verdicts[0], Verdict::Unknown);
        assert!(again.to_revoke.is_empty());
    }

    #[tokio::test]
    async fn malformed_tokens_cost_no_read() {
        let lookup = Counting::default();
        let report: Vec<ReportedToken> = ["", "apk_", "sk_live_x", &"apk_".repeat(10)]
            .iter()
            .map(|t| reported(t, ""))
            .collect();
        let a = assess(&lookup, &report).await.unwrap();
        assert!(a.feedback.iter().all(|f| f.label == Label::FalsePositive));
        assert_eq!(lookup.calls.load(Ordering::SeqCst), 0);
        let empty = assess(&lookup, &[]).await.unwrap();
        assert!(empty.feedback.is_empty());
    }

    #[test]
    fn the_response_is_githubs_format() {
        let f = Feedback {
            token_hash: token_hash("some_token"),
            token_type: "t".into(),
            label: Label::FalsePositive,
        };
        let json = serde_json::to_value([f]).unwrap();
        assert_eq!(json[0]["label"], "false_positive");
        assert_eq!(json[0]["token_type"], "t");
        assert_eq!(json[0]["token_hash"].as_str().unwrap().len(), 64);
        assert_eq!(
            serde_json::to_value(Label::TruePositive).unwrap(),
            "true_positive"
        );
    }
}
