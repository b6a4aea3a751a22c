//! `apikeys`: the operators' command line. It creates the table and manages an
//! organization's keys directly in DynamoDB, through the standard AWS configuration
//! (profile, region, credentials, `AWS_ENDPOINT_URL_DYNAMODB`), so it serves DynamoDB Local
//! and a deployed stack alike. The secret of a new key is printed once and never stored.

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apikeys::allow::AllowList;
use apikeys::audit::{Actor, Event, EventId};
use apikeys::key::{Access, ApiKey, KeyId, KeyState, OrgId, Permission};
use apikeys::meta::Meta;
use apikeys::owner::{InvalidOwnerId, OwnerId};
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{AuditReader, EventRange, KeyIndex, KeyReader, StoreError};
use apikeys::write::{self, NewKey, WriteContext, WriteError, WritePolicy};
use chrono::{DateTime, Utc};
use clap::builder::PossibleValuesParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use uuid::Uuid;

mod expiry;
mod follow;
mod owner;
mod quota;

#[derive(Parser)]
#[command(name = "apikeys", version, about, long_about = None)]
struct Cli {
    /// The DynamoDB table (the stack's `TableName` output).
    #[arg(long, env = "TABLE_NAME", global = true, default_value = "apikeys")]
    table: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table (on-demand, the key schema of template.yaml).
    CreateTable {
        /// Succeed without change when the table exists already.
        #[arg(long)]
        if_absent: bool,
    },
    /// Create a key and print its secret, once.
    CreateKey(CreateKey),
    /// Show one key.
    GetKey(KeyRef),
    /// List an organization's keys, newest first.
    ListKeys {
        #[arg(long)]
        org: OrgId,
        /// Keys per page, 1 to 1000.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        #[arg(long, value_enum, default_value_t = Order::Desc)]
        order: Order,
        /// Start strictly after this key id (the last id of the previous page).
        #[arg(long)]
        after: Option<KeyId>,
        /// Only this owner's keys (read from the by-owner index).
        #[arg(long, value_parser = parse_owner)]
        owner: Option<OwnerId>,
    },
    /// Disable a key. Its secret stops working within the functions' caller cache TTL
    /// (CALLER_CACHE_TTL_SECS, 5 s by default): a function that served it just before may
    /// still accept it until then.
    DisableKey(KeyRef),
    /// Enable a disabled key.
    EnableKey(KeyRef),
    /// Delete a key and its secret for good. Like disabling, it takes up to the functions'
    /// caller cache TTL (5 s by default) to reach every function.
    DeleteKey(KeyRef),
    /// Create COUNT keys with assorted permissions in ORG, for load and paging tests. Their
    /// secrets are not kept.
    Seed {
        #[arg(long)]
        org: OrgId,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        count: u32,
        /// Writes in flight at once.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
    },
    /// Create the local demo organization (`demo`) once, and print its admin secret.
    SeedDemo,
    /// Show an owner's own credits (what is left now) and rate limits, shared by its keys.
    GetOwner(owner::OwnerRef),
    /// Set an owner's own credits and rate limits, whole, shared by all of its keys; the
    /// change is recorded as owner.updated.
    SetOwner(owner::SetOwner),
    /// Publish the table's audit events from now on, printing each as EventBridge would
    /// receive it (`make run` runs it beside the API; it reads DynamoDB Local's stream).
    FollowEvents,
    /// Write the expiry notices that are due (key.expiring, key.expired), once, as the
    /// scheduled expiry-notices function does every 5 minutes.
    ExpiryNotices(expiry::Notices),
    /// List in the by-expiry index the keys with an expiry written before it existed (once,
    /// after upgrading: docs/deploy.md), so that they get their expiry notices. One Scan of
    /// the table.
    BackfillExpiry,
    /// List an organization's audit events (or one key's, deleted or not), newest first.
    Events {
        #[arg(long)]
        org: OrgId,
        /// Only this key's events.
        #[arg(long)]
        key: Option<KeyId>,
        /// Events per page, 1 to 1000.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Start strictly before this event id (the last id of the previous page).
        #[arg(long)]
        before: Option<EventId>,
    },
}

#[derive(Args)]
struct CreateKey {
    #[arg(long)]
    org: OrgId,
    #[arg(long)]
    name: String,
    /// The id of the user who creates the key (default: the nil UUID).
    #[arg(long)]
    creator: Option<Uuid>,
    /// A permission to grant; repeat it for several. Makes a restricted key.
    #[arg(long = "permission", value_name = "PERMISSION",
          value_parser = PossibleValuesParser::new(Permission::ALL.iter().map(|p| p.as_str())),
          conflicts_with = "unrestricted", required_unless_present = "unrestricted")]
    permissions: Vec<String>,
    /// Grant every permission, present and future.
    #[arg(long)]
    unrestricted: bool,
    /// When the key stops working, as RFC 3339 (e.g. 2027-01-01T00:00:00Z).
    #[arg(long, value_parser = parse_time)]
    expires: Option<DateTime<Utc>>,
    #[command(flatten)]
    quota: quota::QuotaArgs,
    /// Whom the key is for: 1 to 128 characters of your choosing (e.g. your customer's id).
    #[arg(long, value_parser = parse_owner)]
    owner: Option<OwnerId>,
    /// The key's metadata: a JSON object of at most 4096 bytes, nested at most 8 levels
    /// (e.g. '{"tenant": "t-42"}'); verify hands it back to the calling service.
    #[arg(long, value_name = "JSON", value_parser = parse_meta)]
    meta: Option<Meta>,
    /// A network the key may be used from, as a CIDR or a bare address; repeat it for up to
    /// 50. Without it, any address.
    #[arg(long = "allowed-cidr", value_name = "CIDR")]
    allowed_cidrs: Vec<String>,
}

#[derive(Args)]
struct KeyRef {
    #[arg(long)]
    org: OrgId,
    #[arg(long)]
    id: KeyId,
}

#[derive(Clone, Copy, ValueEnum)]
enum Order {
    Asc,
    Desc,
}

fn parse_owner(s: &str) -> Result<OwnerId, String> {
    s.parse()
        .map_err(|e: InvalidOwnerId| format!("an owner id {e}"))
}

fn parse_meta(s: &str) -> Result<Meta, String> {
    let value: Value = serde_json::from_str(s).map_err(|e| format!("not JSON ({e})"))?;
    Meta::new(&value)
        .map_err(|e| format!("meta {e}"))?
        .ok_or_else(|| "an empty object is no metadata: leave --meta out".to_owned())
}

/// The `--allowed-cidr` list: `None` when none is given.
fn allow_list(items: &[String]) -> Result<Option<AllowList>, CliError> {
    if items.is_empty() {
        return Ok(None);
    }
    AllowList::parse(items)
        .map(Some)
        .map_err(|e| CliError::Input(format!("--allowed-cidr: {e}")))
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("not an RFC 3339 time ({e}); e.g. 2027-01-01T00:00:00Z"))
}

/// A failure, told to the operator in one line. Store errors carry their source chain: the
/// CLI's user is the operator, who needs the cause.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{0}")]
    Input(String),
    #[error("no key {id} in organization {org}")]
    NoKey { org: OrgId, id: KeyId },
    #[error("organization {0} has no keys")]
    NoOrg(OrgId),
    #[error("table {0} does not exist; create it with: apikeys create-table --table {0}")]
    NoTable(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Write(WriteError),
    #[error("{0}")]
    Policy(#[from] write::PolicyError),
    #[error("cannot tell which AWS identity is running this command (sts:GetCallerIdentity): {0}")]
    Identity(String),
}

impl From<WriteError> for CliError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(s) => CliError::Store(s),
            other => CliError::Write(other),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let checked = match &cli.command {
        Command::CreateKey(args) => args.quota.check().err().map(|e| ("create-key", e)),
        Command::SetOwner(args) => args.check().err().map(|e| ("set-owner", e)),
        _ => None,
    };
    if let Some((name, e)) = checked {
        // A usage error like clap's own, with the subcommand's usage line.
        let mut cli = <Cli as clap::CommandFactory>::command();
        cli.build();
        let kind = clap::error::ErrorKind::ValueValidation;
        match cli.find_subcommand_mut(name) {
            Some(sub) => sub.error(kind, e).exit(),
            None => cli.error(kind, e).exit(),
        }
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apikeys: {}", chain(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each said once.
fn chain(e: &dyn Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

async fn run(cli: Cli) -> Result<(), CliError> {
    // An operator waits for a slow answer rather than retry by hand.
    let config = apikeys::config::patient(
        apikeys::config::sdk_config().await,
        std::time::Duration::from_secs(30),
    );
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &cli.table);
    let out = Output { json: cli.json };
    if let Command::CreateTable { if_absent } = cli.command {
        return create_table(&store, if_absent, out).await;
    }
    ensure_table(&store).await?;
    let s = Session {
        now: Utc::now(),
        policy: WritePolicy::from_env()?,
        store,
        config,
        out,
    };
    match cli.command {
        Command::CreateTable { .. } => unreachable!("handled above"),
        Command::CreateKey(args) => s.create_key(args).await,
        Command::GetKey(k) => s.get_key(&k).await,
        Command::ListKeys {
            org,
            limit,
            order,
            after,
            owner,
        } => s.list_keys(org, limit, order, after, owner).await,
        Command::DisableKey(k) => s.set_state(k, KeyState::Disabled).await,
        Command::EnableKey(k) => s.set_state(k, KeyState::Active).await,
        Command::DeleteKey(k) => s.delete_key(k).await,
        Command::Seed {
            org,
            count,
            concurrency,
        } => seed(s.store, org, count, concurrency, s.out).await,
        Command::Events {
            org,
            key,
            limit,
            before,
        } => s.events(org, key, limit, before).await,
        Command::SeedDemo => s.seed_demo().await,
        Command::FollowEvents => follow::follow(&s.store, &s.config)
            .await
            .map_err(|e| CliError::Input(e.to_string())),
        Command::ExpiryNotices(args) => expiry::run(&s.store, s.policy, args, s.out).await,
        Command::BackfillExpiry => expiry::backfill(&s.store, s.out).await,
        Command::GetOwner(args) => owner::get(&s.store, args, s.out).await,
        Command::SetOwner(args) => {
            let ctx = s.writer().await?;
            owner::set(&s.store, &s.policy, &ctx, args, s.out).await
        }
    }
}

/// What every command on an existing table works with.
struct Session {
    store: DynamoStore,
    policy: WritePolicy,
    config: aws_config::SdkConfig,
    /// The command's time, for its writes and views.
    now: DateTime<Utc>,
    out: Output,
}

impl Session {
    /// Every change is recorded as made by the AWS identity running this command.
    async fn writer(&self) -> Result<WriteContext, CliError> {
        operator(&self.config, self.now).await
    }

    async fn create_key(&self, args: CreateKey) -> Result<(), CliError> {
        let now = self.now;
        let access = if args.unrestricted {
            Access::Unrestricted
        } else {
            let list = args.permissions.iter().map(|p| p.parse::<Permission>());
            Access::new(
                true,
                list.collect::<Result<_, _>>()
                    .map_err(|e| CliError::Input(e.to_string()))?,
            )
        };
        if args.expires.is_some_and(|t| t <= now) {
            return Err(CliError::Input("--expires must be in the future".into()));
        }
        let new = NewKey {
            org: args.org,
            name: args.name,
            creator_id: args.creator.unwrap_or(Uuid::nil()),
            access,
            expires: args.expires,
            id: None,
            quota: args.quota.quota(),
            owner_id: args.owner,
            meta: args.meta,
            allowed_cidrs: allow_list(&args.allowed_cidrs)?,
        };
        let ctx = self.writer().await?;
        let created = write::create(&self.store, &self.policy, &ctx, new, None).await?;
        let (key, secret) = (created.key, created.secret);
        let mut object = view(&key, now);
        object["secret"] = json!(secret.expose());
        self.out.print(object, || {
            format!(
                "{}\nsecret: {}\n(shown once: store it now; only its hash is kept)",
                describe(&key, now),
                secret.expose()
            )
        });
        Ok(())
    }

    async fn get_key(&self, k: &KeyRef) -> Result<(), CliError> {
        let key = existing(&self.store, k).await?;
        self.out
            .print(view(&key, self.now), || describe(&key, self.now));
        Ok(())
    }

    async fn list_keys(
        &self,
        org: OrgId,
        limit: u16,
        order: Order,
        after: Option<KeyId>,
        owner: Option<OwnerId>,
    ) -> Result<(), CliError> {
        let now = self.now;
        let ascending = matches!(order, Order::Asc);
        let max = usize::from(limit) + 1;
        let mut keys = match &owner {
            None => self.store.read_run(&org, after, ascending, max).await?,
            Some(o) => {
                let index = KeyIndex::Owner(o.clone());
                let mut keys = self
                    .store
                    .read_run_in(&org, &index, after, ascending, max)
                    .await?;
                let ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
                let mut found = self.store.unprojected(&org, &ids).await?;
                for k in &mut keys {
                    k.last_used = found.remove(&k.id).and_then(|u| u.last_used);
                }
                keys
            }
        };
        if keys.is_empty() && after.is_none() && owner.is_none() {
            return Err(CliError::NoOrg(org));
        }
        let has_more = keys.len() > usize::from(limit);
        keys.truncate(usize::from(limit));
        let data: Vec<Value> = keys.iter().map(|k| view(k, now)).collect();
        let last = keys.last().map(|k| k.id.to_string());
        self.out.print(
            json!({"data": data, "has_more": has_more, "last_id": last}),
            || {
                let mut lines: Vec<String> = keys.iter().map(|k| describe(k, now)).collect();
                if let (true, Some(last)) = (has_more, &last) {
                    lines.push(format!("more: --after {last}"));
                }
                lines.join("\n")
            },
        );
        Ok(())
    }

    async fn set_state(&self, k: KeyRef, state: KeyState) -> Result<(), CliError> {
        let ctx = self.writer().await?;
        set_state(&self.store, &self.policy, &ctx, k, state, self.out).await
    }

    async fn delete_key(&self, k: KeyRef) -> Result<(), CliError> {
        let ctx = self.writer().await?;
        match write::delete_key(&self.store, &self.policy, &ctx, &k.org, k.id, None).await {
            Ok(_) => {}
            Err(WriteError::NotFound) => {
                return Err(CliError::NoKey {
                    org: k.org,
                    id: k.id,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.out.print(json!({"id": k.id, "deleted": true}), || {
            format!("deleted key {}", k.id)
        });
        Ok(())
    }

    async fn events(
        &self,
        org: OrgId,
        key: Option<KeyId>,
        limit: u16,
        before: Option<EventId>,
    ) -> Result<(), CliError> {
        let mut range = EventRange::ALL;
        if let Some(b) = before {
            range.last = b.prev().unwrap_or(EventId::MIN);
        }
        let limit = usize::from(limit);
        let mut events = self
            .store
            .read_events(&org, key, range, false, limit + 1)
            .await?;
        let has_more = events.len() > limit;
        events.truncate(limit);
        let data: Vec<Value> = events
            .iter()
            .map(|e| serde_json::to_value(e.view()).unwrap_or_default())
            .collect();
        let last = events.last().map(|e| e.id.to_string());
        self.out.print(
            json!({"data": data, "has_more": has_more, "last_id": last}),
            || {
                let mut lines: Vec<String> = events.iter().map(event_line).collect();
                if let (true, Some(last)) = (has_more, &last) {
                    lines.push(format!("more: --before {last}"));
                }
                lines.join("\n")
            },
        );
        Ok(())
    }

    async fn seed_demo(&self) -> Result<(), CliError> {
        let created = apikeys_demo::seed(&self.store).await?;
        let ids: Vec<String> = created.iter().map(|k| k.id.to_string()).collect();
        self.out.print(
            json!({"org": apikeys_demo::ORG, "created": ids,
                   "admin_id": apikeys_demo::ADMIN_ID,
                   "admin_secret": apikeys_demo::ADMIN_SECRET}),
            || match created.len() {
                0 => "demo organization: present already".to_owned(),
                n => format!("demo organization: created {n} keys"),
            },
        );
        Ok(())
    }
}

/// An audit event in one line of text.
fn event_line(e: &Event) -> String {
    let mut changes = serde_json::to_string(&e.changes).unwrap_or_default();
    if let Some(adjustment) = e.credits {
        // key.credits_adjusted: what was added or taken (`{"increment": N}`).
        changes += &format!(" {}", json!(adjustment));
    }
    if let Some(at) = e.expires {
        // key.expiring, key.expired: the expiry the notice is for.
        changes += &format!(
            " expires {}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    format!(
        "{}  {}  {:<12}  {}  {}:{}  {}",
        e.id,
        e.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.action,
        e.key_id.map(|k| k.to_string()).unwrap_or_else(|| e
            .owner_id
            .as_ref()
            .map(|o| format!("owner {o}"))
            .unwrap_or_default()),
        serde_json::to_value(e.actor.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        e.actor.id,
        changes
    )
}

#[derive(Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn print(self, value: Value, text: impl FnOnce() -> String) {
        if self.json {
            println!("{value:#}");
        } else {
            println!("{}", text());
        }
    }
}

fn view(key: &ApiKey, now: DateTime<Utc>) -> Value {
    let mut v = serde_json::to_value(key.view(now)).unwrap_or_default();
    v["org"] = json!(key.org);
    v
}

fn describe(key: &ApiKey, now: DateTime<Utc>) -> String {
    let view = view(key, now);
    let access = match key.access.permissions() {
        None => "unrestricted".to_owned(),
        Some(list) => list
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut line = format!(
        "{}  {:<8}  {}  …{}  {}  {}",
        key.id,
        view["status"].as_str().unwrap_or(""),
        view["created_date"].as_str().unwrap_or(""),
        key.last_four,
        key.name,
        access
    );
    if let Some(owner) = &key.owner_id {
        line.push_str(&format!("  owner={owner}"));
    }
    let line = match &key.allowed_cidrs {
        Some(list) => format!("{line}  from {}", list.to_strings().join(",")),
        None => line,
    };
    match quota::describe(&view) {
        q if q.is_empty() => line,
        q => format!("{line}  {q}"),
    }
}

async fn existing(store: &DynamoStore, k: &KeyRef) -> Result<ApiKey, CliError> {
    match store.get_key(&k.org, k.id).await? {
        Some(key) => Ok(key),
        None => Err(missing(store, k).await),
    }
}

/// Why a key is not there: no such key, or no such organization (one without keys).
async fn missing(store: &DynamoStore, k: &KeyRef) -> CliError {
    match store.read_run(&k.org, None, true, 1).await {
        Ok(keys) if keys.is_empty() => CliError::NoOrg(k.org.clone()),
        Ok(_) => CliError::NoKey {
            org: k.org.clone(),
            id: k.id,
        },
        Err(e) => e.into(),
    }
}

/// The operator of a write: the caller's AWS identity (`sts:GetCallerIdentity`), its ARN as
/// the event's actor. Against a DynamoDB on this machine (`make run`: an endpoint on a
/// loopback host), where no AWS identity exists, the OS user, as `local:<user>`. A write to
/// a real table whose caller cannot be identified is refused: no change goes unattributed.
async fn operator(
    config: &aws_config::SdkConfig,
    now: DateTime<Utc>,
) -> Result<WriteContext, CliError> {
    let local = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .is_some_and(|url| on_loopback(&url));
    let actor = if local {
        Actor::cli(format!("local:{}", Actor::cli_user().id))
    } else {
        let identity = aws_sdk_sts::Client::new(config)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| CliError::Identity(chain(&e)))?;
        let arn = identity
            .arn()
            .ok_or_else(|| CliError::Identity("GetCallerIdentity returned no ARN".into()))?;
        Actor::cli(arn)
    };
    Ok(WriteContext::operator(actor).at(now))
}

/// Whether an endpoint URL names a host on this machine.
fn on_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = match host.strip_prefix('[') {
        // An IPv6 literal: up to the closing bracket.
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

async fn set_state(
    store: &DynamoStore,
    policy: &WritePolicy,
    ctx: &WriteContext,
    k: KeyRef,
    state: KeyState,
    out: Output,
) -> Result<(), CliError> {
    let key = match write::set_state(store, policy, ctx, &k.org, k.id, state).await {
        Ok(key) => key,
        Err(WriteError::NotFound) => return Err(missing(store, &k).await),
        Err(e) => return Err(e.into()),
    };
    out.print(view(&key, ctx.now), || describe(&key, ctx.now));
    Ok(())
}

async fn create_table(store: &DynamoStore, if_absent: bool, out: Output) -> Result<(), CliError> {
    let exists = table_exists(store).await?;
    if exists && !if_absent {
        return Err(CliError::Input(format!(
            "table {} exists already (--if-absent accepts that)",
            store.table()
        )));
    }
    if !exists {
        // With the stream the deployed table has: `follow-events` (make run) reads it.
        store.create_table_with_stream().await?;
    }
    out.print(
        json!({"table": store.table(), "created": !exists}),
        || match exists {
            true => format!("table {}: present already", store.table()),
            false => format!("table {}: created", store.table()),
        },
    );
    Ok(())
}

async fn table_exists(store: &DynamoStore) -> Result<bool, CliError> {
    match store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(StoreError::Unavailable(Box::new(e)).into()),
    }
}

async fn ensure_table(store: &DynamoStore) -> Result<(), CliError> {
    match table_exists(store).await? {
        true => Ok(()),
        false => Err(CliError::NoTable(store.table().to_owned())),
    }
}

/// Creates `count` keys, `concurrency` at a time, with a progress bar on stderr.
async fn seed(
    store: DynamoStore,
    org: OrgId,
    count: u32,
    concurrency: u16,
    out: Output,
) -> Result<(), CliError> {
    let bar = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(u64::from(count))
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} keys  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let store = Arc::new(store);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (store, next, bar, org) = (store.clone(), next.clone(), bar.clone(), org.clone());
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count as usize {
                    return Ok::<(), CliError>(());
                }
                write::create_key(&*store, seed_key(&org, i)).await?;
                bar.inc(1);
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done.map_err(|e| CliError::Input(format!("a writer stopped: {e}")))? {
            workers.abort_all();
            bar.abandon();
            return Err(e);
        }
    }
    bar.finish();
    out.print(json!({"org": org, "created": count}), || {
        format!("created {count} keys in organization {org}")
    });
    Ok(())
}

/// The i-th seeded key: every fifth unrestricted, the others granting a few permissions.
fn seed_key(org: &OrgId, i: usize) -> NewKey {
    let all = Permission::ALL;
    let access = match i % 5 {
        0 => Access::Unrestricted,
        n => Access::new(
            true,
            (0..n).map(|j| all[(i * 7 + j * 13) % all.len()]).collect(),
        ),
    };
    NewKey {
        org: org.clone(),
        name: format!("seed key {i}"),
        creator_id: Uuid::nil(),
        access,
        expires: None,
        id: None,
        quota: Default::default(),
        owner_id: None,
        meta: None,
        allowed_cidrs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::{allow_list, on_loopback, parse_meta};

    #[test]
    fn only_an_endpoint_on_this_machine_counts_as_local() {
        for url in [
            "http://127.0.0.1:8000",
            "http://localhost:8000/",
            "http://[::1]:8000",
            "127.0.0.2",
        ] {
            assert!(on_loopback(url), "{url}");
        }
        for url in [
            "https://dynamodb.us-east-1.amazonaws.com",
            "http://10.0.0.1:8000",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io:8000",
            "",
        ] {
            assert!(!on_loopback(url), "{url}");
        }
    }

    #[test]
    fn meta_and_allowed_cidrs_are_read_by_the_services_rules() {
        assert!(parse_meta(r#"{"tenant": "t-42"}"#).is_ok());
        for (bad, says) in [
            ("[1]", "must be a JSON object"),
            ("{}", "leave --meta out"),
            ("{", "not JSON"),
        ] {
            let why = parse_meta(bad).unwrap_err();
            assert!(why.contains(says), "{bad}: {why}");
        }
        assert_eq!(allow_list(&[]).unwrap(), None);
        let list = allow_list(&["10.0.0.1".to_owned()]).unwrap().unwrap();
        assert_eq!(list.to_strings(), ["10.0.0.1/32"]);
        let why = allow_list(&["10.0.0.1/8".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(why.contains("--allowed-cidr: entry 0"), "{why}");
    }
}
