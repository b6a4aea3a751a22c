//! template.yaml against the code:
//! - the table that the code creates (`apikeys create-table`, `make run`, these tests) and
//!   the one that template.yaml deploys must have the same keys and indexes: a query that
//!   works locally must work in AWS;
//! - each function it deploys is a crate of the workspace whose binary serves the handler of
//!   its name, with a role, a log group and the configuration of its own;
//! - its routes send each method and path to the function that the local router of `make
//!   run` (Cargo.toml) sends it to;
//! - its roles allow each write the items and attributes the code's transactions name, and
//!   no more: the tests record those transactions on DynamoDB Local (which enforces no IAM)
//!   and match them against the roles' conditions; no role may update or delete an audit
//!   event, and the code never Puts one over another.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use apikeys::App;
use apikeys::audit::{Change, Leak};
use apikeys::store::dynamo::DynamoStore;
use apikeys::store::{
    AuditReader, EventRange, ExpiryStore, KeyReader, KeyWriter, Phase, WriteFailure,
};
use apikeys::write::{Idempotency, Revocation, WriteContext};
use apikeys_tests::*;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::{AttributeValue, TableDescription, TransactWriteItem, Update};
use serde_yaml_ng::Value;

/// An index: its name, its key, its projection type, and the other attributes it carries
/// (sorted; none for `ALL` and `KEYS_ONLY`).
type Index = (String, Vec<(String, String)>, String, Vec<String>);

/// A table's shape, in a form both sources can be reduced to: attribute definitions, the
/// primary key, and each index with its key and projection.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    attributes: BTreeSet<(String, String)>,
    key: Vec<(String, String)>,
    indexes: BTreeSet<Index>,
}

fn root() -> PathBuf {
    crate::repo_root()
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).expect("read template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml is YAML")
}

fn template_table() -> Value {
    let template = template();
    let tables: Vec<&Value> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .collect();
    assert_eq!(tables.len(), 1, "template.yaml should declare one table");
    tables[0]["Properties"].clone()
}

fn text(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} should be a plain string in template.yaml: {v:?}"))
        .to_owned()
}

fn key_of(list: &Value) -> Vec<(String, String)> {
    list.as_sequence()
        .map(|s| {
            s.iter()
                .map(|e| (text(e, "AttributeName"), text(e, "KeyType")))
                .collect()
        })
        .unwrap_or_default()
}

fn template_shape(props: &Value) -> Shape {
    let indexes = ["GlobalSecondaryIndexes", "LocalSecondaryIndexes"]
        .iter()
        .flat_map(|kind| props[*kind].as_sequence().cloned().unwrap_or_default())
        .map(|i| {
            let mut carried: Vec<String> = i["Projection"]["NonKeyAttributes"]
                .as_sequence()
                .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
                .unwrap_or_default();
            carried.sort();
            (
                text(&i, "IndexName"),
                key_of(&i["KeySchema"]),
                text(&i["Projection"], "ProjectionType"),
                carried,
            )
        })
        .collect();
    Shape {
        attributes: props["AttributeDefinitions"]
            .as_sequence()
            .expect("AttributeDefinitions")
            .iter()
            .map(|a| (text(a, "AttributeName"), text(a, "AttributeType")))
            .collect(),
        key: key_of(&props["KeySchema"]),
        indexes,
    }
}

fn created_shape(table: &TableDescription) -> Shape {
    let key = |k: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        k.iter()
            .map(|e| {
                (
                    e.attribute_name().to_owned(),
                    e.key_type().as_str().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    let projection = |p: Option<&aws_sdk_dynamodb::types::Projection>| {
        let kind = p
            .and_then(|p| p.projection_type())
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default();
        let mut carried = p
            .map(|p| p.non_key_attributes().to_vec())
            .unwrap_or_default();
        carried.sort();
        (kind, carried)
    };
    let global = table.global_secondary_indexes().iter().map(|i| {
        let name = i.index_name().unwrap_or_default().to_owned();
        let (kind, carried) = projection(i.projection());
        (name, key(i.key_schema()), kind, carried)
    });
    let local = table.local_secondary_indexes().iter().map(|i| {
        let name = i.index_name().unwrap_or_default().to_owned();
        let (kind, carried) = projection(i.projection());
        (name, key(i.key_schema()), kind, carried)
    });
    Shape {
        attributes: table
            .attribute_definitions()
            .iter()
            .map(|a| {
                let t = a.attribute_type().as_str().to_owned();
                (a.attribute_name().to_owned(), t)
            })
            .collect(),
        key: key(table.key_schema()),
        indexes: global.chain(local).collect(),
    }
}

/// An organization's events share one partition that DynamoDB cannot split (bench/README.md,
/// "Ceilings"): Contributor Insights on the table names the organization that nears it.
#[test]
fn the_table_reports_its_busiest_and_most_throttled_keys() {
    let props = template_table();
    assert_eq!(
        props["ContributorInsightsSpecification"]["Enabled"],
        Value::Bool(true)
    );
}

#[tokio::test]
async fn the_table_the_code_creates_is_the_table_the_template_deploys() {
    let app = app().await;
    let described = app
        .store
        .client()
        .describe_table()
        .table_name(app.store.table())
        .send()
        .await
        .expect("describe the test table");
    let table = described.table().expect("a table description");

    let props = template_table();
    assert_eq!(created_shape(table), template_shape(&props));
    assert_eq!(
        text(&props, "BillingMode"),
        table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default(),
        "billing mode"
    );

    let ttl = app
        .store
        .client()
        .describe_time_to_live()
        .table_name(app.store.table())
        .send()
        .await
        .expect("describe the test table's TTL");
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    let spec = &props["TimeToLiveSpecification"];
    assert_eq!(
        ttl.attribute_name(),
        Some(text(spec, "AttributeName").as_str()),
        "the TTL attribute"
    );
    assert_eq!(spec["Enabled"], Value::Bool(true));
    assert!(
        matches!(
            ttl.time_to_live_status().map(|s| s.as_str()),
            Some("ENABLED" | "ENABLING")
        ),
        "{ttl:?}"
    );
}

/// The template's functions, by binary name: their logical id and resource.
fn functions(template: &Value) -> BTreeMap<String, (String, Value)> {
    template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| {
            let binary = text(&r["Metadata"]["BuildProperties"], "Binary");
            (binary, (id.as_str().unwrap().to_owned(), r.clone()))
        })
        .collect()
}

/// The logical id a `!Ref X`, `!GetAtt X.Arn` or `!Sub "...${X}..."` names, as serde_yaml_ng
/// reads those tags.
fn reference(v: &Value) -> String {
    let Value::Tagged(tagged) = v else {
        panic!("not a reference: {v:?}")
    };
    let target = tagged.value.as_str().expect("a reference names a resource");
    match tagged.tag.to_string().as_str() {
        "!Ref" => target.to_owned(),
        "!GetAtt" => target.trim_end_matches(".Arn").to_owned(),
        "!Sub" => target
            .split("${")
            .nth(1)
            .and_then(|s| s.split('}').next())
            .expect("a ${...} in the !Sub")
            .to_owned(),
        tag => panic!("unexpected tag {tag}"),
    }
}

/// Each function's timeout is the one its request's deadline is cut from when the invocation
/// gives none (`deadline.rs`): the functions' shared one, and revoke-leaked's own, longer
/// one for reports of many keys. Both stay below the HTTP API's 30 s integration timeout,
/// and below the time after which the audit trail counts an event as settled.
#[test]
fn each_functions_timeout_is_the_one_its_deadline_is_cut_from() {
    use apikeys::deadline::{FUNCTION_TIMEOUT, REPORT_TIMEOUT};
    let template = template();
    let seconds = |v: &Value| v.as_u64().map(std::time::Duration::from_secs);
    let shared = seconds(&template["Globals"]["Function"]["Timeout"]);
    assert_eq!(shared, Some(FUNCTION_TIMEOUT), "Globals: Timeout");
    for (binary, (id, function)) in functions(&template) {
        let own = seconds(&function["Properties"]["Timeout"]);
        if binary == "publish-events" {
            // Behind no API and writing no event: the stream mapping's batch bounds it.
            assert_eq!(
                own,
                Some(apikeys::publish::FUNCTION_TIMEOUT),
                "{id}: Timeout"
            );
            continue;
        }
        let expected = match binary.as_str() {
            "revoke-leaked" => Some(REPORT_TIMEOUT),
            "expiry-notices" => Some(apikeys::deadline::NOTICES_TIMEOUT),
            _ => None,
        };
        assert_eq!(own, expected, "{id}: Timeout");
        let timeout = own.or(shared).unwrap();
        assert!(
            timeout < std::time::Duration::from_secs(30),
            "{id}: {timeout:?}"
        );
        // An event commits at most this long after its id's time: `settled=true` waits longer.
        assert!(apikeys::page::SETTLE > timeout, "{id}: page::SETTLE");
    }
}

#[test]
fn every_function_is_a_crate_of_the_workspace_serving_its_handler() {
    let template = template();
    let resources = &template["Resources"];
    let functions = functions(&template);
    let names: BTreeSet<&str> = functions.keys().map(String::as_str).collect();
    let crates: BTreeSet<String> = std::fs::read_dir(root().join("functions"))
        .expect("functions/")
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        crates.iter().map(String::as_str).collect(),
        "template.yaml's functions and the crates under functions/"
    );
    assert_eq!(
        names,
        crate::builds::FUNCTIONS.into_iter().collect(),
        "builds::FUNCTIONS"
    );

    let mut roles = BTreeSet::new();
    for (binary, (id, function)) in &functions {
        let props = &function["Properties"];
        // The binary hands each request to the handler of its name.
        let main = std::fs::read_to_string(root().join(format!("functions/{binary}/src/main.rs")))
            .unwrap_or_else(|e| panic!("{binary}'s main.rs: {e}"));
        let handler = match binary.as_str() {
            "publish-events" => "apikeys::publish::publish(".to_owned(),
            // Behind no API: a schedule invokes it.
            "expiry-notices" => "apikeys::expiry::scheduled(".to_owned(),
            _ => format!("apikeys::http::{}(", binary.replace('-', "_")),
        };
        assert!(main.contains(&handler), "{binary} should call {handler}..)");
        let Value::Tagged(name) = &props["FunctionName"] else {
            panic!("{id}: FunctionName should be a !Sub")
        };
        assert_eq!(
            name.value.as_str(),
            Some(format!("${{AWS::StackName}}-{binary}").as_str()),
            "{id}: FunctionName"
        );

        // A role of its own, whose log statement names the function's log group.
        let role = reference(&props["Role"]);
        assert!(roles.insert(role.clone()), "{id} shares the role {role}");
        let policies = &resources[role.as_str()]["Properties"]["Policies"];
        let policy = format!("{policies:?}");
        assert!(
            policy.contains(&format!("/aws/lambda/${{AWS::StackName}}-{binary}:*")),
            "{role} should allow writing to {binary}'s log group"
        );
        let groups: Vec<&str> = resources
            .as_mapping()
            .unwrap()
            .iter()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Logs::LogGroup"))
            .filter(|(_, r)| {
                matches!(&r["Properties"]["LogGroupName"], Value::Tagged(t)
                    if t.value.as_str() == Some(&format!("/aws/lambda/${{{id}}}")))
            })
            .map(|(k, _)| k.as_str().unwrap())
            .collect();
        assert_eq!(groups.len(), 1, "{id}: one log group");

        // Configuration: the write policy where the binary reads it, and the idempotency
        // secret only where an Idempotency-Key is honoured (create and roll).
        let env = props["Environment"]["Variables"].as_mapping();
        let has = |var: &str| env.is_some_and(|e| e.contains_key(var));
        assert_eq!(
            has("EVENT_RETENTION_DAYS"),
            main.contains("WritePolicy::from_env") || main.contains("NoticePolicy::from_env"),
            "{id}: EVENT_RETENTION_DAYS"
        );
        assert_eq!(
            has("IDEMPOTENCY_SECRET"),
            ["create-key", "roll-key"].contains(&binary.as_str()),
            "{id}: IDEMPOTENCY_SECRET"
        );
        if has("IDEMPOTENCY_SECRET") {
            assert_eq!(
                reference(&env.unwrap()[&Value::from("IDEMPOTENCY_SECRET")]),
                "IdempotencySecret"
            );
        }
    }
}

/// A route: a method (or `ANY`) and a path without a trailing slash, to a function.
type Routes = BTreeMap<(String, String), String>;

fn template_routes(template: &Value) -> Routes {
    let mut routes = Routes::new();
    for (binary, (id, function)) in functions(template) {
        let events = function["Properties"]["Events"].as_mapping();
        for event in events.into_iter().flat_map(|e| e.values()) {
            // The publisher's one trigger is the table's stream, and the expiry notices'
            // their schedule: not routes.
            if (binary == "publish-events" && event["Type"].as_str() == Some("DynamoDB"))
                || (binary == "expiry-notices" && event["Type"].as_str() == Some("Schedule"))
            {
                continue;
            }
            assert_eq!(event["Type"].as_str(), Some("HttpApi"), "{id}");
            let props = &event["Properties"];
            assert_eq!(reference(&props["ApiId"]), "Api", "{id}");
            let route = (text(props, "Method"), text(props, "Path"));
            assert!(!route.1.ends_with('/'), "{id}: {route:?}");
            let before = routes.insert(route.clone(), binary.clone());
            assert!(before.is_none(), "{route:?} is routed twice");
        }
    }
    routes
}

/// Where API Gateway sends a request: the route of its exact method, else the path's ANY.
fn deployed<'a>(routes: &'a Routes, method: &str, path: &str) -> Option<&'a str> {
    let path = path.trim_end_matches('/').to_owned();
    routes
        .get(&(method.to_owned(), path.clone()))
        .or_else(|| routes.get(&("ANY".to_owned(), path)))
        .map(String::as_str)
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

#[test]
fn every_route_goes_to_the_function_the_local_router_sends_it_to() {
    let template = template();
    let routes = template_routes(&template);
    let meta = crate::builds::metadata();
    let router = meta["metadata"]["lambda"]["watch"]["router"]
        .as_object()
        .expect("[workspace.metadata.lambda.watch.router] in Cargo.toml");
    let mut paths = BTreeSet::new();
    for (path, target) in router {
        paths.insert(path.trim_end_matches('/').to_owned());
        // A function for every method, or a list of methods and their functions.
        let local: Vec<(&str, &str)> = match target {
            serde_json::Value::String(f) => METHODS.iter().map(|m| (*m, f.as_str())).collect(),
            serde_json::Value::Array(list) => list
                .iter()
                .map(|r| {
                    (
                        r["method"].as_str().unwrap(),
                        r["function"].as_str().unwrap(),
                    )
                })
                .collect(),
            other => panic!("{path}: {other}"),
        };
        for (method, function) in local {
            assert_eq!(
                deployed(&routes, method, path),
                Some(function),
                "{method} {path}: template.yaml and the local router disagree"
            );
        }
    }
    // And no route of the template is missing from the local router.
    let routed: BTreeSet<String> = routes.keys().map(|(_, p)| p.clone()).collect();
    assert_eq!(
        routed, paths,
        "the paths of template.yaml and of the local router"
    );
    for ((method, path), function) in &routes {
        if method != "ANY" {
            let local = &router[path.as_str()];
            let serves = local.as_array().is_some_and(|l| {
                l.iter()
                    .any(|r| r["method"] == method.as_str() && r["function"] == function.as_str())
            });
            assert!(
                serves,
                "{method} {path} -> {function} is not in the local router"
            );
        }
    }
}

/// The DynamoDB statements of a function's role: for each, its actions, and whether IAM
/// allows them only inside a TransactWriteItems.
fn dynamodb_statements(template: &Value, binary: &str) -> Vec<(BTreeSet<String>, bool, Value)> {
    let functions = functions(template);
    let (_, function) = &functions[binary];
    let role = reference(&function["Properties"]["Role"]);
    let policies = &template["Resources"][role.as_str()]["Properties"]["Policies"];
    let mut out = vec![];
    for policy in policies.as_sequence().expect("a role's policies") {
        let statements = policy["PolicyDocument"]["Statement"].as_sequence().unwrap();
        for statement in statements {
            let actions: BTreeSet<String> = match &statement["Action"] {
                Value::String(a) => [a.clone()].into(),
                Value::Sequence(list) => list.iter().map(|a| a.as_str().unwrap().into()).collect(),
                _ => continue,
            };
            let actions: BTreeSet<String> = actions
                .into_iter()
                .filter_map(|a| a.strip_prefix("dynamodb:").map(str::to_owned))
                .collect();
            if actions.is_empty() {
                continue;
            }
            let condition = &statement["Condition"];
            let in_transaction =
                condition["ForAnyValue:StringEquals"]["dynamodb:EnclosingOperation"].as_str()
                    == Some("TransactWriteItems");
            out.push((actions, in_transaction, condition.clone()));
        }
    }
    out
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn revoke_leaked_may_only_read_credentials_and_disable_keys_with_their_event() {
    let template = template();
    let statements = dynamodb_statements(&template, "revoke-leaked");
    let mut outside = BTreeSet::new();
    let mut inside = BTreeSet::new();
    for (actions, in_transaction, condition) in &statements {
        if *in_transaction {
            inside.extend(actions.iter().cloned());
        } else {
            outside.extend(actions.iter().cloned());
        }
        // A Put is only ever the audit event, a Delete only ever a credential.
        let leading = &condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        if actions.contains("PutItem") {
            assert!(*in_transaction, "{actions:?}");
            assert_eq!(leading, &Value::from(vec!["ORG#*#EVENTS"]), "{actions:?}");
        }
        if actions.contains("DeleteItem") {
            assert_eq!(leading, &Value::from(vec!["SECRET#*"]), "{actions:?}");
        }
    }
    assert_eq!(outside, set_of(&["BatchGetItem", "GetItem"]), "reads");
    assert_eq!(
        inside,
        set_of(&["UpdateItem", "DeleteItem", "PutItem"]),
        "inside the transaction"
    );

    // GitHub's keys: the parameter, else fetched from the URL parameter.
    let (_, function) = &functions(&template)["revoke-leaked"];
    let env = &function["Properties"]["Environment"]["Variables"];
    assert_eq!(
        reference(&env["GITHUB_SECRET_SCANNING_KEYS"]),
        "GithubSecretScanningKeys"
    );
    assert_eq!(
        reference(&env["GITHUB_SECRET_SCANNING_KEYS_URL"]),
        "GithubSecretScanningKeysUrl"
    );
    assert_eq!(
        text(
            &template["Parameters"]["GithubSecretScanningKeysUrl"],
            "Default"
        ),
        apikeys::leak::fetch::DEFAULT_KEYS_URL
    );
    // The URL to give GitHub is an output of the stack.
    let output = &template["Outputs"]["SecretScanningUrl"]["Value"];
    let Value::Tagged(url) = output else {
        panic!("SecretScanningUrl should be a !Sub")
    };
    assert!(
        url.value
            .as_str()
            .is_some_and(|u| u.ends_with("/v1/secret_scanning/github")),
        "{url:?}"
    );
}

/// verify-key reads, stamps last use (`last_used_ms` only, on any item), and spends from
/// key items: an UpdateItem on `ORG#…` partitions only, which the audit events' deny
/// covers, never a credential, an idempotency record or a count outside them.
#[test]
fn verify_key_only_reads_records_last_use_and_spends_from_key_items() {
    let template = template();
    let mut spends = 0;
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "verify-key") {
        assert!(!in_transaction, "{actions:?}");
        if actions == set_of(&["GetItem"]) {
            continue;
        }
        assert_eq!(actions, set_of(&["UpdateItem"]));
        let stamp = &condition["ForAllValues:StringEquals"]["dynamodb:Attributes"];
        if !stamp.is_null() {
            assert_eq!(
                *stamp,
                Value::from(vec!["pk", "sk", "last_used_ms"]),
                "the stamp may only set last_used_ms"
            );
            continue;
        }
        spends += 1;
        assert_eq!(
            strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]),
            ["ORG#*".to_owned()].into(),
            "the spend may only update key items"
        );
    }
    assert_eq!(spends, 1, "one statement for the spend");
    let resources = &template["Resources"];
    let role = &resources["VerifyKeyRole"]["Properties"];
    assert!(
        format!("{:?}", role["ManagedPolicyArns"]).contains("AuditEventsAppendOnlyPolicy"),
        "the audit events' deny covers the spend's ORG#* partitions"
    );
}

/// `/v1/owner/{owner_id}` is one `ANY` route, to the owner function: every method reaches
/// it, which serves GET, HEAD and PUT and answers the others' 405 itself.
#[test]
fn the_owner_path_is_one_any_route_to_the_owner_function() {
    let routes = template_routes(&template());
    let owner: Vec<_> = routes
        .iter()
        .filter(|((_, path), _)| path.starts_with("/v1/owner"))
        .collect();
    let any = ("ANY".to_owned(), "/v1/owner/{owner_id}".to_owned());
    assert_eq!(owner, [(&any, &"owner".to_owned())], "{owner:?}");
    for method in METHODS {
        let (function, key) = Function::route("/v1/owner/{owner_id}", method);
        assert_eq!(function, Function::Owner, "{method}");
        assert_eq!(key, "ANY /v1/owner/{owner_id}", "{method}");
    }
}

/// What owner's UpdateItem may name: the owner item's primary key and attributes
/// (shared/src/store/dynamo/owner.rs), and nothing else.
const OWNER_ATTRIBUTES: [&str; 11] = [
    "pk",
    "sk",
    "org",
    "owner_id",
    "version",
    "updated_ms",
    "credits_remaining",
    "credits_refill",
    "credits_period_ms",
    "ratelimits",
    "rl",
];

/// owner reads (GetItem), stamps last use (`last_used_ms` only), and writes only inside a
/// transaction: an UpdateItem on `ORG#…` partitions limited to an owner item's attributes,
/// and the Put of its audit event. IAM sees partition keys only and a key item shares its
/// organization's partition with the owners, so the attribute list is what keeps a key's
/// name, permissions, state and secret out of reach. No Query, no Delete, no batch.
#[test]
fn owner_may_update_only_an_owner_items_attributes_and_put_only_its_event() {
    let template = template();
    let (mut outside, mut inside, mut updates) = (BTreeSet::new(), BTreeSet::new(), vec![]);
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "owner") {
        if !in_transaction {
            outside.extend(actions.iter().cloned());
            if actions.contains("UpdateItem") {
                assert_eq!(
                    condition["ForAllValues:StringEquals"]["dynamodb:Attributes"],
                    Value::from(vec!["pk", "sk", "last_used_ms"]),
                    "outside a transaction, only the last-use stamp"
                );
            }
            continue;
        }
        inside.extend(actions.iter().cloned());
        if actions.contains("UpdateItem") {
            updates.push(condition);
        }
    }
    assert_eq!(
        outside,
        set_of(&["GetItem", "UpdateItem"]),
        "outside a transaction"
    );
    assert_eq!(
        inside,
        set_of(&["UpdateItem", "PutItem"]),
        "inside the transaction"
    );
    let puts = leading_keys(&template, "owner", "PutItem");
    assert_eq!(puts, Some(set_of(&["ORG#*#EVENTS"])), "owner's PutItem");

    let [update] = updates.as_slice() else {
        panic!("one UpdateItem statement inside the transaction: {updates:?}")
    };
    assert_eq!(
        strings(&update["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]),
        set_of(&["ORG#*"]),
        "the owner item's partition"
    );
    let allowed = strings(&update["ForAllValues:StringEquals"]["dynamodb:Attributes"]);
    assert_eq!(allowed, set_of(&OWNER_ATTRIBUTES), "owner's UpdateItem");
    for key_only in [
        "name",
        "permissions",
        "restricted",
        "state",
        "secret_hash",
        "expires_ms",
    ] {
        assert!(
            !allowed.contains(key_only),
            "{key_only}: a key's, not an owner's"
        );
    }
    let role = &template["Resources"]["OwnerRole"]["Properties"];
    assert!(
        format!("{:?}", role["ManagedPolicyArns"]).contains("AuditEventsAppendOnlyPolicy"),
        "the audit events' deny covers the event partitions under ORG#*"
    );
}

/// A PUT of an owner's limits, then one that drops its rate limits, through the handler on
/// a table that records their transactions: each names only the owner item (pk `ORG#<org>`,
/// sk `OWNER#<id>`) and the attributes the role allows, together all of them, and puts only
/// its event.
#[tokio::test]
async fn owner_writes_only_what_its_role_allows() {
    let template = template();
    let allowed = dynamodb_statements(&template, "owner")
        .into_iter()
        .find(|(actions, inside, _)| *inside && actions.contains("UpdateItem"))
        .map(|(_, _, c)| strings(&c["ForAllValues:StringEquals"]["dynamodb:Attributes"]))
        .expect("owner's UpdateItem");
    let puts = leading_keys(&template, "owner", "PutItem").expect("by partition");

    let app = app().await;
    apikeys_demo::seed(&app.store).await.unwrap();
    let (store, transactions) = recording(&app);
    let app = App { store, ..app };
    let text = std::fs::read_to_string(root().join("events/owner.http.change.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut body: serde_json::Value =
        serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
    let mut items = Vec::new();
    // Set (201), then changed (200).
    for status in [201, 200] {
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let reply = Reply::from(apikeys::http::owner(&app, &policy(), req).await);
        assert_eq!(reply.status, status, "{}", reply.body);
        items.extend(transactions.take());
        body.as_object_mut().unwrap().remove("ratelimits");
        event["body"] = body.to_string().into();
        event["headers"]["content-length"] = body.to_string().len().to_string().into();
    }
    let [put, deleted, updated] = partitions(&items);
    assert!(deleted.is_empty(), "no Delete: {deleted:?}");
    assert_eq!(put.len(), 2, "one event a PUT");
    for pk in &put {
        assert!(matches_any(&puts, pk), "PutItem on {pk}");
    }
    assert_eq!(
        updated,
        ["ORG#demo", "ORG#demo"],
        "the owner item's partition"
    );
    let mut named = BTreeSet::new();
    for update in items.iter().filter_map(|i| i.update()) {
        let sk = update.key().get("sk").and_then(|v| v.as_s().ok());
        assert_eq!(sk.map(String::as_str), Some("OWNER#cus_demo"), "{update:?}");
        named.extend(attributes_named(update));
    }
    let refused: Vec<&String> = named.difference(&allowed).collect();
    assert!(refused.is_empty(), "IAM would refuse the PUT: {refused:?}");
    let extra: Vec<&String> = allowed.difference(&named).collect();
    assert!(extra.is_empty(), "allowed, never named by a PUT: {extra:?}");
}

/// The strings of a condition's value: one, or a list.
fn strings(v: &Value) -> BTreeSet<String> {
    match v {
        Value::String(s) => [s.clone()].into(),
        Value::Sequence(list) => list
            .iter()
            .map(|s| s.as_str().expect("a string").to_owned())
            .collect(),
        other => panic!("not a string or a list: {other:?}"),
    }
}

/// The partition key patterns (`dynamodb:LeadingKeys`, StringLike) a role allows `action`
/// on inside a transaction; `None` when one of its statements allows it on any partition.
fn leading_keys(template: &Value, binary: &str, action: &str) -> Option<BTreeSet<String>> {
    let mut patterns = BTreeSet::new();
    for (actions, in_transaction, condition) in dynamodb_statements(template, binary) {
        if !actions.contains(action) {
            continue;
        }
        assert!(in_transaction, "{binary}: {action} outside a transaction");
        let leading = &condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
        if leading.is_null() {
            return None;
        }
        patterns.extend(strings(leading));
    }
    Some(patterns)
}

/// Whether `value` matches an IAM StringLike `pattern` (`*`: any run of characters).
fn like(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn matches_any(patterns: &BTreeSet<String>, value: &str) -> bool {
    patterns.iter().any(|p| like(p, value))
}

/// Records the items of every TransactWriteItems a client sends, as the code built them.
#[derive(Clone, Debug, Default)]
struct Transactions(Arc<Mutex<Vec<Vec<TransactWriteItem>>>>);

impl Intercept for Transactions {
    fn name(&self) -> &'static str {
        "Transactions"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(input) = context.input().downcast_ref::<TransactWriteItemsInput>() {
            let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
            all.push(input.transact_items().to_vec());
        }
        Ok(())
    }
}

impl Transactions {
    /// The items sent since the last call.
    fn take(&self) -> Vec<TransactWriteItem> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut *all).into_iter().flatten().collect()
    }
}

/// The app's table through a client that records its transactions.
fn recording(app: &App<DynamoStore>) -> (DynamoStore, Transactions) {
    let transactions = Transactions::default();
    let config = app
        .store
        .client()
        .config()
        .to_builder()
        .interceptor(transactions.clone())
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    (DynamoStore::new(client, app.store.table()), transactions)
}

fn pk(key: &HashMap<String, AttributeValue>) -> String {
    match key.get("pk") {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("no string pk: {other:?}"),
    }
}

/// The partition keys of a transaction's Puts, Deletes and Updates.
fn partitions(items: &[TransactWriteItem]) -> [Vec<String>; 3] {
    let puts = items.iter().filter_map(|i| i.put()).map(|p| pk(p.item()));
    let deletes = items.iter().filter_map(|i| i.delete()).map(|d| pk(d.key()));
    let updates = items.iter().filter_map(|i| i.update()).map(|u| pk(u.key()));
    [puts.collect(), deletes.collect(), updates.collect()]
}

/// The attributes an UpdateItem names, as `dynamodb:Attributes` sees them: its key and every
/// attribute of its update and condition expressions.
fn attributes_named(update: &Update) -> BTreeSet<String> {
    const WORDS: &[&str] = &[
        "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN",
    ];
    const FUNCTIONS: &[&str] = &[
        "attribute_exists",
        "attribute_not_exists",
        "attribute_type",
        "begins_with",
        "contains",
        "size",
        "if_not_exists",
        "list_append",
    ];
    let aliases = update.expression_attribute_names();
    let mut names: BTreeSet<String> = update.key().keys().cloned().collect();
    let expressions = [
        Some(update.update_expression()),
        update.condition_expression(),
    ];
    for expression in expressions.into_iter().flatten() {
        let tokens = expression
            .split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '#' | ':')));
        for token in tokens {
            if token.is_empty() || token.starts_with(':') || token.starts_with(char::is_numeric) {
                continue;
            }
            if token.starts_with('#') {
                let name = aliases.and_then(|a| a.get(token));
                names.insert(name.unwrap_or_else(|| panic!("{token} unnamed")).clone());
            } else if !WORDS.contains(&token.to_uppercase().as_str()) && !FUNCTIONS.contains(&token)
            {
                names.insert(token.to_owned());
            }
        }
    }
    names
}

#[test]
fn no_role_may_update_or_delete_an_audit_event() {
    let template = template();
    let resources = &template["Resources"];
    for (binary, (id, function)) in functions(&template) {
        let role = reference(&function["Properties"]["Role"]);
        let attached = resources[role.as_str()]["Properties"]["ManagedPolicyArns"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{role} ({binary}) has no managed policies"));
        let denies = attached.iter().map(reference).any(|policy| {
            let statements = &resources[policy.as_str()]["Properties"]["PolicyDocument"];
            let statements = statements["Statement"].as_sequence().cloned();
            statements.unwrap_or_default().iter().any(|s| {
                let actions = strings(&s["Action"]);
                s["Effect"].as_str() == Some("Deny")
                    && reference(&s["Resource"]) == "KeysTable"
                    && [
                        "dynamodb:UpdateItem",
                        "dynamodb:DeleteItem",
                        "dynamodb:BatchWriteItem",
                        "dynamodb:PartiQLUpdate",
                        "dynamodb:PartiQLDelete",
                    ]
                    .iter()
                    .all(|a| actions.contains(*a))
                    // ForAnyValue: a Deny that applies when the request's partition is one.
                    && s["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"]
                        == Value::from(vec!["ORG#*#EVENTS"])
            })
        });
        assert!(
            denies,
            "{id}: its role should deny updating and deleting events"
        );
    }
}

#[tokio::test]
async fn events_live_where_the_deny_looks_and_no_write_puts_one_over_another() {
    let app = app().await;
    let org = org();
    let (key, _) = create(&app, new_key(&org, "audited")).await;
    let trail = app
        .store
        .read_events(&org, None, EventRange::ALL, true, 10)
        .await
        .expect("read the events");
    let [created] = trail.as_slice() else {
        panic!("one event: {trail:?}")
    };

    // A later write whose event has the id of the first one.
    let before = app
        .store
        .key_for_write(&org, key.id)
        .await
        .unwrap()
        .unwrap();
    let mut after = before.clone();
    after.key.name = "renamed".into();
    after.key.version += 1;
    let mut forged = created.clone();
    forged.request_id = "forged".into();
    let change = Change {
        from: "audited".into(),
        to: "renamed".into(),
    };
    forged.changes = [("name".to_owned(), change)].into();
    let result = app.store.replace(&before, &after, &forged, None).await;
    assert!(
        matches!(result, Err(WriteFailure::Store(_))),
        "a store failure, not a conflict on the key: {result:?}"
    );
    let trail = app
        .store
        .read_events(&org, None, EventRange::ALL, true, 10)
        .await
        .unwrap();
    assert_eq!(
        trail.as_slice(),
        std::slice::from_ref(created),
        "the event as written"
    );
    let now = app.store.get_key(&org, key.id).await.unwrap().unwrap();
    assert_eq!(now.name, "audited", "nothing of the transaction applied");

    // The Deny's pattern matches every event's partition, and no other item's.
    let template = template();
    let policy = &template["Resources"]["AuditEventsAppendOnlyPolicy"]["Properties"];
    let statement = &policy["PolicyDocument"]["Statement"][0];
    let events = strings(&statement["Condition"]["ForAnyValue:StringLike"]["dynamodb:LeadingKeys"]);
    let mut kinds = BTreeSet::new();
    for item in scan(&app).await {
        let is_event =
            matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with("EVENT#"));
        kinds.insert(is_event);
        assert_eq!(matches_any(&events, &pk(&item)), is_event, "{item:?}");
    }
    assert_eq!(
        kinds,
        BTreeSet::from([false, true]),
        "events and other items"
    );
}

#[tokio::test]
async fn update_key_may_delete_only_credentials() {
    let template = template();
    let deletes = leading_keys(&template, "update-key", "DeleteItem").expect("by partition");
    assert_eq!(deletes, set_of(&["SECRET#*"]), "update-key's DeleteItem");
    let puts = leading_keys(&template, "update-key", "PutItem").expect("by partition");
    assert_eq!(puts, set_of(&["ORG#*#EVENTS"]), "update-key's PutItem");

    // An update after a roll's grace period deletes the rolled-out secret's credential.
    let app = app().await;
    let org = org();
    let (key, _) = create(&app, new_key(&org, "rolled")).await;
    apikeys::write::roll_key(&app.store, &policy(), &ctx(), &org, key.id, 1, None, None)
        .await
        .expect("roll");
    let (store, transactions) = recording(&app);
    let later = ctx().at(chrono::Utc::now() + chrono::Duration::minutes(1));
    let renamed = apikeys::write::KeyChange::name("renamed");
    apikeys::write::update_key(&store, &policy(), &later, &org, key.id, &renamed, None)
        .await
        .expect("update");
    let [put, deleted, _] = partitions(&transactions.take());
    assert!(!deleted.is_empty(), "the update deletes a credential");
    for pk in &deleted {
        assert!(matches_any(&deletes, pk), "DeleteItem on {pk}");
    }
    for pk in &put {
        assert!(matches_any(&puts, pk), "PutItem on {pk}");
    }
}

#[tokio::test]
async fn roll_key_may_put_only_secrets_events_and_idempotency_records() {
    let template = template();
    let puts = leading_keys(&template, "roll-key", "PutItem").expect("by partition");
    let expected = set_of(&["SECRET#*", "ORG#*#EVENTS", "IDEM#*"]);
    assert_eq!(puts, expected, "roll-key's PutItem");
    let deletes = leading_keys(&template, "roll-key", "DeleteItem").expect("by partition");
    assert_eq!(deletes, set_of(&["SECRET#*"]), "roll-key's DeleteItem");

    // An idempotent roll of a key rolled before: it puts the new secret's credential, its
    // event and the idempotency record, and deletes the secret the first roll replaced.
    let app = app().await;
    let org = org();
    let (key, _) = create(&app, new_key(&org, "rolled twice")).await;
    apikeys::write::roll_key(&app.store, &policy(), &ctx(), &org, key.id, 600, None, None)
        .await
        .expect("roll");
    let (store, transactions) = recording(&app);
    let idempotency = Idempotency::new("roll-twice", b"{}").unwrap();
    let (policy, ctx) = (policy(), ctx());
    let idem = Some(&idempotency);
    apikeys::write::roll_key(&store, &policy, &ctx, &org, key.id, 600, None, idem)
        .await
        .expect("roll again");
    let [put, deleted, _] = partitions(&transactions.take());
    for pk in &put {
        assert!(matches_any(&puts, pk), "PutItem on {pk}");
    }
    for pattern in &puts {
        assert!(
            put.iter().any(|pk| like(pattern, pk)),
            "no Put in {pattern}"
        );
    }
    assert!(!deleted.is_empty(), "the roll deletes a credential");
    for pk in &deleted {
        assert!(matches_any(&deletes, pk), "DeleteItem on {pk}");
    }
}

/// The key item's attribute for the hashes of its leaked secrets: revoke-leaked may update
/// it, whether or not the code of this revision names it.
const LEAKED_HASHES: &str = "leaked_hashes";

#[tokio::test]
async fn revoke_leaked_may_update_only_the_attributes_a_revocation_names() {
    let template = template();
    let mut allowed = None;
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "revoke-leaked") {
        if actions.contains("UpdateItem") {
            assert!(in_transaction, "{actions:?}");
            assert!(allowed.is_none(), "one UpdateItem statement");
            let attributes = &condition["ForAllValues:StringEquals"]["dynamodb:Attributes"];
            allowed = Some(strings(attributes));
        }
    }
    let allowed = allowed.expect("revoke-leaked's UpdateItem");

    // Revocations of a key in a roll's grace period (both credentials updated) and of one
    // whose previous secret's grace is over (that credential deleted, the key's previous
    // secret removed).
    let app = app().await;
    let org = org();
    let (in_grace, _) = create(&app, new_key(&org, "in grace")).await;
    let (over, _) = create(&app, new_key(&org, "grace over")).await;
    for (key, grace) in [(&in_grace, 3600), (&over, 1)] {
        apikeys::write::roll_key(
            &app.store,
            &policy(),
            &ctx(),
            &org,
            key.id,
            grace,
            None,
            None,
        )
        .await
        .expect("roll");
    }
    let (store, transactions) = recording(&app);
    let policy = policy();
    let later =
        WriteContext::github("gh-req").at(chrono::Utc::now() + chrono::Duration::minutes(1));
    let leak = Leak {
        url: "https://github.com/octo/repo".into(),
        source: "content".into(),
    };
    for key in [&in_grace, &over] {
        let stored = app
            .store
            .key_for_write(&org, key.id)
            .await
            .unwrap()
            .unwrap();
        let (id, hash) = (key.id, &stored.hash);
        let revoked = apikeys::write::revoke_leaked(&store, &policy, &later, &org, id, hash, &leak)
            .await
            .expect("revoke");
        assert!(matches!(revoked, Revocation::Revoked(_)), "{revoked:?}");
    }
    let items = transactions.take();
    let updates: Vec<&Update> = items.iter().filter_map(|i| i.update()).collect();
    assert_eq!(updates.len(), 5, "two key items, three credentials");
    let named: BTreeSet<String> = updates.iter().flat_map(|u| attributes_named(u)).collect();
    let refused: Vec<&String> = named.difference(&allowed).collect();
    assert!(
        refused.is_empty(),
        "IAM would refuse the revocation: {refused:?}"
    );
    let mut needed = named;
    needed.insert(LEAKED_HASHES.to_owned());
    let extra: Vec<&String> = allowed.difference(&needed).collect();
    assert!(
        extra.is_empty(),
        "allowed, never named by a revocation: {extra:?}"
    );
}

/// The key a `!If [HasKmsKey, !Ref KmsKeyArn, <else>]` names when no `KmsKeyArn` is given.
fn key_without_parameter(v: &Value) -> String {
    let Value::Tagged(tagged) = v else {
        panic!("not an !If: {v:?}")
    };
    assert_eq!(tagged.tag.to_string(), "!If", "{v:?}");
    let branches = tagged
        .value
        .as_sequence()
        .expect("!If [condition, then, else]");
    assert_eq!(branches[0].as_str(), Some("HasKmsKey"), "{v:?}");
    assert_eq!(reference(&branches[1]), "KmsKeyArn", "{v:?}");
    reference(&branches[2])
}

#[test]
fn the_functions_environment_is_encrypted_with_a_customer_managed_key_their_roles_decrypt() {
    // The cursor and idempotency secrets sit in the environment: with the AWS managed key,
    // GetFunctionConfiguration shows them to any reader; with a customer managed key, only
    // to one also allowed kms:Decrypt on it.
    let template = template();
    let resources = &template["Resources"];
    let key = key_without_parameter(&template["Globals"]["Function"]["KmsKeyArn"]);
    assert_eq!(
        key, "EnvironmentKey",
        "a key of the stack's own, never AWS::NoValue"
    );
    let made = &resources[key.as_str()];
    assert_eq!(made["Type"].as_str(), Some("AWS::KMS::Key"));
    assert_eq!(
        made["Properties"]["EnableKeyRotation"].as_bool(),
        Some(true)
    );
    let condition = made["Condition"]
        .as_str()
        .expect("made only without KmsKeyArn");
    let Value::Tagged(equals) = &template["Conditions"][condition] else {
        panic!("{condition} should be an !Equals")
    };
    assert_eq!(equals.tag.to_string(), "!Equals");
    assert_eq!(reference(&equals.value[0]), "KmsKeyArn");
    assert_eq!(equals.value[1].as_str(), Some(""));
    for (binary, (id, function)) in functions(&template) {
        assert!(
            function["Properties"].get("KmsKeyArn").is_none(),
            "{id} should keep the environment's key"
        );
        let role = reference(&function["Properties"]["Role"]);
        let policies = resources[role.as_str()]["Properties"]["Policies"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{role} ({binary}) has no policies"));
        let decrypts = policies.iter().any(|p| {
            let statements = p["PolicyDocument"]["Statement"].as_sequence().cloned();
            statements.unwrap_or_default().iter().any(|s| {
                s["Effect"].as_str() == Some("Allow")
                    && strings(&s["Action"]) == set_of(&["kms:Decrypt"])
                    && key_without_parameter(&s["Resource"]) == "EnvironmentKey"
            })
        });
        assert!(decrypts, "{role} ({binary}) should decrypt its environment");
    }
}

#[test]
fn only_revoke_leaked_gets_the_optional_github_token_and_only_from_secrets_manager() {
    let template = template();
    for (binary, (id, function)) in functions(&template) {
        let token =
            &function["Properties"]["Environment"]["Variables"]["GITHUB_SECRET_SCANNING_TOKEN"];
        if binary != "revoke-leaked" {
            assert!(token.is_null(), "{id} should not get the token");
            continue;
        }
        let Value::Tagged(choice) = token else {
            panic!("{id}: the token should be an !If: {token:?}")
        };
        assert_eq!(choice.tag.to_string(), "!If");
        let branches = choice
            .value
            .as_sequence()
            .expect("!If [condition, then, else]");
        assert_eq!(branches[0].as_str(), Some("HasGithubToken"));
        let Value::Tagged(resolve) = &branches[1] else {
            panic!("{id}: the token should be resolved: {:?}", branches[1])
        };
        assert_eq!(resolve.tag.to_string(), "!Sub");
        assert_eq!(
            resolve.value.as_str(),
            Some("{{resolve:secretsmanager:${GithubTokenSecretArn}:SecretString}}")
        );
        assert_eq!(
            reference(&branches[2]),
            "AWS::NoValue",
            "no token without the parameter"
        );
    }
    assert_eq!(
        template["Parameters"]["GithubTokenSecretArn"]["Default"].as_str(),
        Some(""),
        "optional"
    );
}

/// The crate name of a function of the tests' router.
fn binary_of(function: Function) -> &'static str {
    match function {
        Function::GetKey => "get-key",
        Function::Owner => "owner",
        Function::ListKeys => "list-keys",
        Function::CreateKey => "create-key",
        Function::UpdateKey => "update-key",
        Function::RollKey => "roll-key",
        Function::DeleteKey => "delete-key",
        Function::ListEvents => "list-events",
        Function::VerifyKey => "verify-key",
        Function::RevokeLeaked => "revoke-leaked",
    }
}

#[test]
fn the_tests_route_every_request_where_the_template_does() {
    // The HTTP tests build each event for the function `Function::route` names, with its
    // route key: both must be template.yaml's, or the tests would pass on a route no
    // deployment has.
    let template = template();
    let routes = template_routes(&template);
    let paths: BTreeSet<&String> = routes.keys().map(|(_, path)| path).collect();
    for path in paths {
        for method in METHODS {
            let (function, key) = Function::route(path, method);
            let deployed = deployed(&routes, method, path);
            assert_eq!(deployed, Some(binary_of(function)), "{method} {path}");
            let own = routes.contains_key(&(method.to_owned(), path.clone()));
            let expected = if own {
                format!("{method} {path}")
            } else {
                format!("ANY {path}")
            };
            assert_eq!(key, expected, "{method} {path}: the route key");
        }
    }
}

/// The alarms on one AWS/DynamoDB metric: for each alarm that watches `metric` (as its own
/// metric or in its math), the dimensions it watches it with, by name (`!Ref` by the logical
/// id it names).
fn dynamodb_alarms(template: &Value, metric: &str) -> Vec<(String, BTreeMap<String, String>)> {
    let dimensions = |list: &Value| -> BTreeMap<String, String> {
        list.as_sequence()
            .into_iter()
            .flatten()
            .map(|d| {
                let value = match &d["Value"] {
                    Value::String(s) => s.clone(),
                    other => reference(other),
                };
                (text(d, "Name"), value)
            })
            .collect()
    };
    let mut found = Vec::new();
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let name = name.as_str().expect("a logical id").to_owned();
        let props = &resource["Properties"];
        if props["Namespace"].as_str() == Some("AWS/DynamoDB")
            && props["MetricName"].as_str() == Some(metric)
        {
            found.push((name.clone(), dimensions(&props["Dimensions"])));
        }
        for query in props["Metrics"].as_sequence().into_iter().flatten() {
            let watched = &query["MetricStat"]["Metric"];
            if watched["Namespace"].as_str() == Some("AWS/DynamoDB")
                && watched["MetricName"].as_str() == Some(metric)
            {
                found.push((name.clone(), dimensions(&watched["Dimensions"])));
            }
        }
    }
    found
}

#[test]
fn the_table_and_each_of_its_indexes_have_throttle_alarms_and_conflicts_one() {
    let template = template();
    let table = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .find(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .map(|(name, _)| name.as_str().expect("a logical id").to_owned())
        .expect("a table");
    let indexes: Vec<String> = template_table()["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("the table's indexes")
        .iter()
        .map(|i| text(i, "IndexName"))
        .collect();
    assert!(indexes.len() >= 2, "{indexes:?}");
    let on = |index: Option<&String>| {
        let mut d = BTreeMap::from([("TableName".to_owned(), table.clone())]);
        if let Some(i) = index {
            d.insert("GlobalSecondaryIndexName".to_owned(), i.clone());
        }
        d
    };
    for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
        let alarms = dynamodb_alarms(&template, metric);
        for target in std::iter::once(None).chain(indexes.iter().map(Some)) {
            assert!(
                alarms.iter().any(|(_, d)| *d == on(target)),
                "no alarm on {metric} of {target:?}: {alarms:?}"
            );
        }
    }
    let conflicts = dynamodb_alarms(&template, "TransactionConflict");
    assert!(
        conflicts.iter().any(|(_, d)| *d == on(None)),
        "no alarm on the table's TransactionConflict: {conflicts:?}"
    );
    // Each alarm tells someone, when there is someone to tell.
    for (name, _) in dynamodb_alarms(&template, "TransactionConflict")
        .into_iter()
        .chain(dynamodb_alarms(&template, "ReadThrottleEvents"))
    {
        let actions = &template["Resources"][name.as_str()]["Properties"]["AlarmActions"];
        assert!(!actions.is_null(), "{name} has no AlarmActions");
    }
}

/// The functions (logical ids) whose `metric` in `namespace` an alarm watches, as its own
/// metric or in its math; and the most metrics any one alarm's math reads.
fn function_alarms(template: &Value, namespace: &str, metric: &str) -> (BTreeSet<String>, usize) {
    let (mut watched, mut most) = (BTreeSet::new(), 0);
    for (_, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm") {
            continue;
        }
        let props = &resource["Properties"];
        let queries: Vec<&Value> = props["Metrics"]
            .as_sequence()
            .into_iter()
            .flatten()
            .collect();
        let stats = queries.iter().map(|q| &q["MetricStat"]["Metric"]);
        let stats: Vec<&Value> = stats.filter(|m| !m.is_null()).collect();
        most = most.max(stats.len());
        for m in std::iter::once(props).chain(stats) {
            if m["Namespace"].as_str() != Some(namespace)
                || m["MetricName"].as_str() != Some(metric)
            {
                continue;
            }
            for d in m["Dimensions"].as_sequence().into_iter().flatten() {
                if d["Name"].as_str() == Some("FunctionName") {
                    watched.insert(reference(&d["Value"]));
                }
            }
        }
    }
    (watched, most)
}

/// Every function behind the API has its errors and throttles watched (an alarm of its own,
/// or the key management functions' sum), and every one that stamps last use its
/// LastUseFailures, so that a new function is not left out; no alarm's math reads more than
/// the 10 metrics CloudWatch allows.
#[test]
fn every_function_behind_the_api_is_watched_by_the_alarms() {
    let template = template();
    let (last_use, _) = function_alarms(&template, "apikeys", "LastUseFailures");
    for (binary, (id, function)) in functions(&template) {
        let mut events = function["Properties"]["Events"]
            .as_mapping()
            .into_iter()
            .flatten();
        if !events.any(|(_, e)| e["Type"].as_str() == Some("HttpApi")) {
            continue;
        }
        for metric in ["Errors", "Throttles"] {
            let (watched, most) = function_alarms(&template, "AWS/Lambda", metric);
            assert!(watched.contains(&id), "{id}: no alarm on its {metric}");
            assert!(most <= 10, "an alarm's math reads {most} metrics");
        }
        let stamp = Value::from(vec!["pk", "sk", "last_used_ms"]);
        let stamps = dynamodb_statements(&template, &binary)
            .iter()
            .any(|(a, inside, c)| {
                !inside
                    && a.contains("UpdateItem")
                    && c["ForAllValues:StringEquals"]["dynamodb:Attributes"] == stamp
            });
        assert_eq!(last_use.contains(&id), stamps, "{id}: LastUseFailures");
    }
}

/// The tagged value `v` is, as `(tag, value)`: `!If [...]`, `!GetAtt X.Y`, ...
fn tagged(v: &Value) -> (String, Value) {
    let Value::Tagged(t) = v else {
        panic!("not a tagged value: {v:?}")
    };
    (t.tag.to_string(), t.value.clone())
}

/// Every audit event leaves through the table's stream, filtered by Lambda to inserted event
/// items (and changed key items with credits, for their notices), to publish-events, on one
/// bus (the stack's own unless EventBusArn names one); a batch that still fails after its
/// retries is described in an encrypted dead-letter queue, whose first message raises an
/// alarm.
#[test]
fn audit_events_leave_through_the_stream_to_the_bus_with_a_dead_letter_queue_and_its_alarm() {
    let template = template();
    let resources = &template["Resources"];
    let table = &resources["KeysTable"]["Properties"];
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"].as_str(),
        Some("NEW_AND_OLD_IMAGES"),
        "a key's credits before and after a verify: key.credits_low"
    );

    let functions = functions(&template);
    let (id, function) = &functions["publish-events"];
    let props = &function["Properties"];
    let events = props["Events"]
        .as_mapping()
        .expect("publish-events: Events");
    assert_eq!(events.len(), 1, "{id}: the stream is its one trigger");
    let (_, stream) = events.iter().next().unwrap();
    assert_eq!(stream["Type"].as_str(), Some("DynamoDB"));
    let source = &stream["Properties"];
    assert_eq!(
        tagged(&source["Stream"]),
        ("!GetAtt".into(), Value::from("KeysTable.StreamArn"))
    );
    assert_eq!(source["StartingPosition"].as_str(), Some("TRIM_HORIZON"));
    assert_eq!(
        source["ParallelizationFactor"].as_u64(),
        Some(1),
        "in order per shard"
    );
    assert_eq!(source["BisectBatchOnFunctionError"].as_bool(), Some(true));
    let retries = source["MaximumRetryAttempts"]
        .as_u64()
        .expect("bounded retries");
    assert!((1..=10_000).contains(&retries), "{retries}");
    assert_eq!(
        strings(&source["FunctionResponseTypes"]),
        set_of(&["ReportBatchItemFailures"])
    );
    let filters = source["FilterCriteria"]["Filters"].as_sequence().unwrap();
    let patterns: Vec<serde_json::Value> = filters
        .iter()
        .map(|f| serde_json::from_str(f["Pattern"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        patterns,
        [
            serde_json::json!({"eventName": ["INSERT"],
                "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "EVENT#"}]}}}}),
            serde_json::json!({"eventName": ["MODIFY"],
                "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "KEY#"}]}},
                    "NewImage": {"credits_remaining": {"N": [{"exists": true}]}}}})
        ]
    );
    let on_failure = &source["DestinationConfig"]["OnFailure"];
    assert_eq!(on_failure["Type"].as_str(), Some("SQS"));
    assert_eq!(
        reference(&on_failure["Destination"]),
        "PublishEventsDeadLetterQueue"
    );

    // The bus: the stack's own unless EventBusArn names one.
    let bus = props["Environment"]["Variables"]["EVENT_BUS_NAME"].clone();
    let (tag, choice) = tagged(&bus);
    assert_eq!(tag, "!If");
    assert_eq!(choice[0].as_str(), Some("MakesEventBus"));
    assert_eq!(reference(&choice[1]), "EventBus");
    assert_eq!(reference(&choice[2]), "EventBusArn");
    assert_eq!(
        resources["EventBus"]["Type"].as_str(),
        Some("AWS::Events::EventBus")
    );
    assert_eq!(
        resources["EventBus"]["Condition"].as_str(),
        Some("MakesEventBus")
    );
    let (_, equals) = tagged(&template["Conditions"]["MakesEventBus"]);
    assert_eq!(reference(&equals[0]), "EventBusArn");
    assert_eq!(equals[1].as_str(), Some(""));

    // The dead-letter queue, encrypted either way, and its alarm.
    let queue = &resources["PublishEventsDeadLetterQueue"];
    assert_eq!(queue["Type"].as_str(), Some("AWS::SQS::Queue"));
    let (_, kms) = tagged(&queue["Properties"]["KmsMasterKeyId"]);
    let (_, managed) = tagged(&queue["Properties"]["SqsManagedSseEnabled"]);
    assert_eq!(
        (kms[0].as_str(), managed[0].as_str()),
        (Some("HasKmsKey"), Some("HasKmsKey"))
    );
    assert_eq!(reference(&kms[1]), "KmsKeyArn");
    assert_eq!(
        managed[2].as_bool(),
        Some(true),
        "SQS-managed encryption without KmsKeyArn"
    );
    let alarms: Vec<&Value> = resources
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|r| &r["Properties"])
        .filter(|a| a["Namespace"].as_str() == Some("AWS/SQS"))
        .collect();
    assert_eq!(alarms.len(), 1, "one alarm on the dead-letter queue");
    let alarm = alarms[0];
    assert_eq!(
        alarm["MetricName"].as_str(),
        Some("ApproximateNumberOfMessagesVisible")
    );
    let dimension = &alarm["Dimensions"][0];
    assert_eq!(dimension["Name"].as_str(), Some("QueueName"));
    assert_eq!(
        tagged(&dimension["Value"]),
        (
            "!GetAtt".into(),
            Value::from("PublishEventsDeadLetterQueue.QueueName")
        )
    );
    assert_eq!(
        alarm["ComparisonOperator"].as_str(),
        Some("GreaterThanThreshold")
    );
    assert_eq!(alarm["Threshold"].as_u64(), Some(0));
}

/// publish-events' role reads the table's stream and nothing of its items, puts events on
/// its one bus and sends to its one dead-letter queue.
#[test]
fn publish_events_may_read_only_the_stream_and_put_only_on_its_bus() {
    let template = template();
    let statements = dynamodb_statements(&template, "publish-events");
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(
        statements[0].0,
        set_of(&[
            "DescribeStream",
            "GetRecords",
            "GetShardIterator",
            "ListStreams"
        ])
    );
    let role = &template["Resources"]["PublishEventsRole"]["Properties"]["Policies"][0];
    let all = role["PolicyDocument"]["Statement"].as_sequence().unwrap();
    let allowed = |action: &str| -> Vec<&Value> {
        all.iter()
            .filter(|s| s["Effect"].as_str() == Some("Allow"))
            .filter(|s| strings(&s["Action"]).contains(action))
            .map(|s| &s["Resource"])
            .collect()
    };
    let stream = allowed("dynamodb:GetRecords");
    assert_eq!(
        tagged(stream[0]),
        ("!Sub".into(), Value::from("${KeysTable.Arn}/stream/*"))
    );
    let bus = allowed("events:PutEvents");
    assert_eq!(bus.len(), 1);
    let (_, choice) = tagged(bus[0]);
    assert_eq!(
        (reference(&choice[1]), reference(&choice[2])),
        ("EventBus".into(), "EventBusArn".into())
    );
    let queue = allowed("sqs:SendMessage");
    assert_eq!(queue.len(), 1);
    assert_eq!(reference(queue[0]), "PublishEventsDeadLetterQueue");
    let events: BTreeSet<String> = all
        .iter()
        .filter(|s| s["Effect"].as_str() == Some("Allow"))
        .flat_map(|s| strings(&s["Action"]))
        .filter(|a| a.starts_with("events:") || a.starts_with("sqs:"))
        .collect();
    assert_eq!(events, set_of(&["events:PutEvents", "sqs:SendMessage"]));
}

/// expiry-notices runs every 5 minutes with the lead time the stack sets, in the bounds the
/// code accepts, and no secret in its environment. Its role may Query only the by-expiry
/// index, get only event items (a notice's witness) and the warm-up item, and, inside a
/// transaction, Put only events and update only a key's notice attributes.
#[test]
fn expiry_notices_run_on_a_schedule_with_the_stacks_lead_time_and_a_narrow_role() {
    let template = template();
    let (id, function) = &functions(&template)["expiry-notices"];
    let props = &function["Properties"];
    let events = props["Events"].as_mapping().expect("its schedule");
    assert_eq!(events.len(), 1, "{id}: one trigger");
    let (_, schedule) = events.iter().next().unwrap();
    assert_eq!(schedule["Type"].as_str(), Some("Schedule"));
    assert_eq!(
        schedule["Properties"]["Schedule"].as_str(),
        Some("rate(5 minutes)")
    );
    let env = &props["Environment"]["Variables"];
    assert_eq!(
        reference(&env["EXPIRY_NOTICE_LEAD_DAYS"]),
        "ExpiryNoticeLeadDays"
    );
    for secret in ["CURSOR_SECRET", "CURSOR_SECRET_REVISION"] {
        assert_eq!(reference(&env[secret]), "AWS::NoValue", "{id}: {secret}");
    }
    let lead = &template["Parameters"]["ExpiryNoticeLeadDays"];
    assert_eq!(
        (lead["MinValue"].as_u64(), lead["MaxValue"].as_u64()),
        (Some(1), Some(u64::from(apikeys::expiry::MAX_LEAD_DAYS)))
    );
    assert_eq!(
        lead["Default"].as_u64(),
        Some(u64::from(apikeys::expiry::DEFAULT_LEAD_DAYS))
    );

    let mut outside = BTreeSet::new();
    let mut inside = BTreeSet::new();
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "expiry-notices") {
        let leading = || strings(&condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        if in_transaction {
            inside.extend(actions.iter().cloned());
        } else {
            outside.extend(actions.iter().cloned());
        }
        if actions.contains("PutItem") {
            assert!(in_transaction);
            assert_eq!(leading(), set_of(&["ORG#*#EVENTS"]));
        }
        if actions.contains("GetItem") {
            assert_eq!(leading(), set_of(&["ORG#*#EVENTS", "WARMUP"]));
        }
        if actions.contains("UpdateItem") {
            assert_eq!(leading(), set_of(&["ORG#*"]));
        }
        if actions.contains("Query") {
            assert!(condition.is_null(), "{condition:?}");
        }
    }
    assert_eq!(
        outside,
        set_of(&["Query", "GetItem"]),
        "outside a transaction"
    );
    assert_eq!(
        inside,
        set_of(&["UpdateItem", "PutItem"]),
        "in a transaction"
    );
    let role = reference(&props["Role"]);
    let policy = format!(
        "{:?}",
        template["Resources"][role.as_str()]["Properties"]["Policies"]
    );
    assert!(
        policy.contains("${KeysTable.Arn}/index/by-expiry"),
        "{policy}"
    );
    assert!(!policy.contains("/index/by-key") && !policy.contains("/index/by-creator"));
}

/// The attributes the role's UpdateItem may name are exactly those a notice's update names,
/// recorded from both notices on DynamoDB Local.
#[tokio::test]
async fn expiry_notices_update_only_the_attributes_the_role_allows() {
    let template = template();
    let mut allowed = None;
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "expiry-notices") {
        if actions.contains("UpdateItem") {
            assert!(in_transaction, "{actions:?}");
            let attributes = &condition["ForAllValues:StringEquals"]["dynamodb:Attributes"];
            allowed = Some(strings(attributes));
        }
    }
    let allowed = allowed.expect("expiry-notices' UpdateItem");

    let app = app().await;
    let org = org();
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::days(1);
    let new = apikeys::write::NewKey {
        expires: Some(expires),
        ..new_key(&org, "expiring")
    };
    apikeys::write::create(&app.store, &policy(), &ctx().at(now), new, None)
        .await
        .unwrap();
    let (store, transactions) = recording(&app);
    let notices = apikeys::expiry::NoticePolicy::new(7, policy()).unwrap();
    for at in [now, expires] {
        let summary = apikeys::expiry::run(&store, &notices, at, "req")
            .await
            .unwrap();
        assert_eq!(summary.expiring + summary.expired, 1, "{summary:?}");
    }
    assert_eq!(store.shards(), apikeys::store::dynamo::EXPIRY_SHARDS);
    let items = transactions.take();
    let [puts, deletes, updates] = partitions(&items);
    assert_eq!(puts, [event_partition(&org), event_partition(&org)]);
    assert!(deletes.is_empty());
    assert_eq!(updates, [format!("ORG#{org}"), format!("ORG#{org}")]);
    let named: BTreeSet<String> = items
        .iter()
        .filter_map(|i| i.update())
        .flat_map(attributes_named)
        .collect();
    assert_eq!(named, allowed);
    // Nothing is listed once both notices are written.
    for phase in [Phase::Expiring, Phase::Expired] {
        for shard in 0..store.shards() {
            let day = expires.date_naive();
            let listed = store.listed(phase, day, shard, expires, 10).await.unwrap();
            assert!(listed.is_empty(), "{listed:?}");
        }
    }
}

fn event_partition(org: &apikeys::key::OrgId) -> String {
    format!("ORG#{org}#EVENTS")
}
