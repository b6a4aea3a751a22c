//! Creating a key: the key item, its credential, the organization's key count plus one and
//! a `key.created` event, in one transaction.

use chrono::Utc;
use uuid::Uuid;

use super::idempotency::nonce;
use super::{
    IDEMPOTENCY_WINDOW, Idempotency, InvalidWrite, WriteContext, WriteError, WritePolicy,
    check_name, diff,
};
use crate::audit::Action;
use crate::key::{Access, ApiKey, KeyId, KeyState, OrgId};
use crate::secret::Secret;
use crate::store::{IdempotencyRecord, KeyWriter, StoreError, StoredKey, WriteFailure};

/// A key to create.
#[derive(Clone, Debug)]
pub struct NewKey {
    pub org: OrgId,
    pub name: String,
    pub creator_id: Uuid,
    pub access: Access,
    pub expires: Option<chrono::DateTime<Utc>>,
    /// The id, a UUIDv7 whose timestamp is the creation time; `None` means a new id for the
    /// write's time. Fixtures and demos pass [`KeyId::new_at`] or a fixed id.
    pub id: Option<KeyId>,
    /// Its credits and rate limits; the default is unmetered.
    pub quota: crate::quota::Quota,
    /// Whom the key is for; `None` for nobody.
    pub owner_id: Option<crate::owner::OwnerId>,
    /// Its metadata ([`crate::meta`]).
    pub meta: Option<crate::meta::Meta>,
    /// The addresses it may be used from ([`crate::allow`]); `None`: any.
    pub allowed_cidrs: Option<crate::allow::AllowList>,
}

impl NewKey {
    /// The record to store for this key with this secret, created at `now` unless its id
    /// says otherwise.
    pub fn into_record(
        self,
        secret: &Secret,
        now: chrono::DateTime<Utc>,
    ) -> Result<ApiKey, InvalidWrite> {
        check_name(&self.name)?;
        super::check_quota(&self.quota)?;
        let id = self.id.unwrap_or_else(|| KeyId::new_at(now));
        // The stored creation time is the one the id carries, so that ordering by
        // (created_date, id) and ordering by id are the same order.
        let created = id.created_at().ok_or(InvalidWrite::IdNotV7)?;
        Ok(ApiKey {
            id,
            org: self.org,
            name: self.name,
            created,
            updated: created,
            last_used: None,
            expires: self.expires.map(super::to_millis),
            creator_id: self.creator_id,
            access: self.access,
            state: KeyState::Active,
            last_four: secret.last_four(),
            version: 1,
            disabled_reason: None,
            quota: self.quota,
            owner_id: self.owner_id,
            meta: self.meta,
            allowed_cidrs: self.allowed_cidrs,
        })
    }
}

/// A created key and its secret, shown this once (and to the retries of an idempotent
/// request).
#[derive(Clone, Debug)]
pub struct Created {
    pub key: ApiKey,
    pub secret: Secret,
    /// Whether this is the answer of an earlier request with the same Idempotency-Key,
    /// rather than a new key.
    pub replayed: bool,
}

/// Creates a key. With `idempotency`, a retry within a day gets the first request's key and
/// secret back, whether the first is finished or racing it.
#[tracing::instrument(skip_all, fields(org = %new.org), err(Display))]
pub async fn create<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    new: NewKey,
    idempotency: Option<&Idempotency>,
) -> Result<Created, WriteError> {
    check_name(&new.name)?;
    ctx.authority.may_create(&new.access, new.expires)?;
    ctx.authority.may_meter(&new.quota)?;
    ctx.authority.may_reach(new.allowed_cidrs.as_ref())?;
    ctx.authority.may_own(new.owner_id.as_ref())?;
    let Some(idem) = idempotency else {
        let secret = Secret::generate().map_err(|e| StoreError::Internal(Box::new(e)))?;
        return Ok(create_with_secret(store, policy, ctx, new, secret, None).await?);
    };
    let keys = policy.secret_keys()?;
    let record_id = idem.record_id(&new.org, &ctx.actor);
    let request = idem.request("create");
    if let Some(done) = replay(store, policy, ctx, &record_id, &request).await? {
        return Ok(done);
    }
    let nonce = nonce().map_err(|e| StoreError::Internal(Box::new(e)))?;
    let secret = keys.derive(&record_id, &request, &nonce);
    let record = RecordOf {
        id: record_id.clone(),
        request: request.clone(),
        nonce,
    };
    match create_with_secret(store, policy, ctx, new, secret, Some(record)).await {
        // Another request with this Idempotency-Key wrote its record first: answer as it did.
        Err(Lost::Record) => replay(store, policy, ctx, &record_id, &request)
            .await?
            .ok_or(WriteError::Conflict),
        other => Ok(other?),
    }
}

/// The answer an earlier request with this record gave, if its record is still valid.
pub(super) async fn replay<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    record_id: &str,
    request: &str,
) -> Result<Option<Created>, WriteError> {
    let Some(record) = store.idempotency_record(record_id).await? else {
        return Ok(None);
    };
    if record.expires <= ctx.now {
        return Ok(None);
    }
    if record.request != request {
        return Err(WriteError::IdempotencyMismatch);
    }
    let secret = policy
        .secret_keys()?
        .rederive(
            &record.id,
            &record.request,
            &record.nonce,
            &record.secret_hash,
        )
        .ok_or_else(|| {
            StoreError::Internal(
                "no configured IDEMPOTENCY_SECRET derives the recorded secret".into(),
            )
        })?;
    Ok(Some(Created {
        key: record.key,
        secret,
        replayed: true,
    }))
}

/// What an idempotency record is made of, before the key it answers with exists.
pub(super) struct RecordOf {
    pub id: String,
    pub request: String,
    pub nonce: String,
}

impl RecordOf {
    pub(super) fn with(
        self,
        ctx: &WriteContext,
        key: &ApiKey,
        secret: &Secret,
    ) -> IdempotencyRecord {
        IdempotencyRecord {
            id: self.id,
            org: key.org.clone(),
            request: self.request,
            nonce: self.nonce,
            secret_hash: secret.hash(),
            key: key.clone(),
            created: ctx.now,
            expires: ctx.now + IDEMPOTENCY_WINDOW,
        }
    }
}

/// Why a write did not happen: another request's idempotency record was there first, or
/// any other reason.
pub(super) enum Lost {
    Record,
    Error(WriteError),
}

impl From<WriteError> for Lost {
    fn from(e: WriteError) -> Self {
        Lost::Error(e)
    }
}

impl From<InvalidWrite> for Lost {
    fn from(e: InvalidWrite) -> Self {
        Lost::Error(e.into())
    }
}

impl From<StoreError> for Lost {
    fn from(e: StoreError) -> Self {
        Lost::Error(e.into())
    }
}

impl From<Lost> for WriteError {
    fn from(l: Lost) -> Self {
        match l {
            Lost::Record => WriteError::Conflict,
            Lost::Error(e) => e,
        }
    }
}

async fn create_with_secret<S: KeyWriter>(
    store: &S,
    policy: &WritePolicy,
    ctx: &WriteContext,
    new: NewKey,
    secret: Secret,
    record: Option<RecordOf>,
) -> Result<Created, Lost> {
    let key = new.into_record(&secret, ctx.now)?;
    let event = ctx.event(
        policy,
        &key.org,
        key.id,
        Action::Created,
        diff::all(&key, true),
    );
    let record = record.map(|r| r.with(ctx, &key, &secret));
    let stored = StoredKey {
        key,
        hash: secret.hash(),
        previous: None,
        leaked: Vec::new(),
        notified: Default::default(),
    };
    match store.insert(&stored, &event, record.as_ref()).await {
        Ok(()) => Ok(Created {
            key: stored.key,
            secret,
            replayed: false,
        }),
        Err(WriteFailure::Idempotency) => Err(Lost::Record),
        // The id or the secret's hash is taken.
        Err(WriteFailure::Key | WriteFailure::Credential) => Err(WriteError::Conflict.into()),
        Err(WriteFailure::Store(e)) => Err(e.into()),
    }
}

/// Creates a key with a fresh random secret as the operator running this process (the
/// admin CLI, seeding, fixtures), with the default policy, and returns both. The secret is
/// shown once.
pub async fn create_key<S: KeyWriter>(
    store: &S,
    new: NewKey,
) -> Result<(ApiKey, Secret), WriteError> {
    let created = create(
        store,
        &WritePolicy::default(),
        &WriteContext::cli(),
        new,
        None,
    )
    .await?;
    Ok((created.key, created.secret))
}

/// Creates a key whose secret is given, as the operator running this process: for fixtures
/// and the local demo, whose secrets are known in advance.
pub async fn create_key_with_secret<S: KeyWriter>(
    store: &S,
    new: NewKey,
    secret: &Secret,
) -> Result<ApiKey, WriteError> {
    let policy = WritePolicy::default();
    let created = create_with_secret(
        store,
        &policy,
        &WriteContext::cli(),
        new,
        secret.clone(),
        None,
    )
    .await
    .map_err(WriteError::from)?;
    Ok(created.key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MAX_NAME_BYTES;

    fn new(name: &str, id: Option<KeyId>) -> NewKey {
        NewKey {
            org: "o".parse().unwrap(),
            name: name.into(),
            creator_id: Uuid::nil(),
            access: Access::Unrestricted,
            expires: None,
            id,
            quota: Default::default(),
            owner_id: None,
            meta: None,
            allowed_cidrs: None,
        }
    }

    #[test]
    fn names_must_be_short_printable_text() {
        let s = Secret::from_random([0; 24]);
        let now = Utc::now();
        assert!(new("ci deploy", None).into_record(&s, now).is_ok());
        assert!(new(&"é".repeat(128), None).into_record(&s, now).is_ok());
        for bad in ["", "   ", "a\nb", &"x".repeat(MAX_NAME_BYTES + 1)] {
            assert_eq!(
                new(bad, None).into_record(&s, now).unwrap_err(),
                InvalidWrite::Name,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ids_must_be_v7_so_that_id_order_is_creation_order() {
        let s = Secret::from_random([0; 24]);
        let v4: KeyId = "3c90c3cc-0d44-4b50-8888-8dd25736052a".parse().unwrap();
        assert_eq!(
            new("k", Some(v4)).into_record(&s, Utc::now()).unwrap_err(),
            InvalidWrite::IdNotV7
        );
        let key = new("k", None).into_record(&s, Utc::now()).unwrap();
        assert_eq!(key.id.created_at(), Some(key.created));
        assert_eq!(key.updated, key.created);
        assert_eq!(key.version, 1);
    }
}
