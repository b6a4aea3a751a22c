//! template.yaml against the code:
//! - the table that the code creates (`apikeys create-table`, `make run`, these tests) and
//!   the one that template.yaml deploys must have the same keys and indexes: a query that
//!   works locally must work in AWS;
//! - each function it deploys is a crate of the workspace whose binary serves the handler of
//!   its name, with a role, a log group and the configuration of its own;
//! - its routes send each method and path to the function that the local router of `make
//!   run` (Cargo.toml) sends it to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use apikeys_tests::*;
use aws_sdk_dynamodb::types::TableDescription;
use serde_yaml_ng::Value;

/// An index: its name, its key, and its projection type.
type Index = (String, Vec<(String, String)>, String);

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
            (
                text(&i, "IndexName"),
                key_of(&i["KeySchema"]),
                text(&i["Projection"], "ProjectionType"),
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
        p.and_then(|p| p.projection_type())
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default()
    };
    let global = table.global_secondary_indexes().iter().map(|i| {
        let name = i.index_name().unwrap_or_default().to_owned();
        (name, key(i.key_schema()), projection(i.projection()))
    });
    let local = table.local_secondary_indexes().iter().map(|i| {
        let name = i.index_name().unwrap_or_default().to_owned();
        (name, key(i.key_schema()), projection(i.projection()))
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
        let handler = format!("apikeys::http::{}(", binary.replace('-', "_"));
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
            main.contains("WritePolicy::from_env"),
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

#[test]
fn verify_key_only_reads_and_records_last_use() {
    let template = template();
    for (actions, in_transaction, condition) in dynamodb_statements(&template, "verify-key") {
        assert!(!in_transaction, "{actions:?}");
        if actions == set_of(&["GetItem"]) {
            continue;
        }
        assert_eq!(actions, set_of(&["UpdateItem"]));
        assert_eq!(
            condition["ForAllValues:StringEquals"]["dynamodb:Attributes"],
            Value::from(vec!["pk", "sk", "last_used_ms"]),
            "the UpdateItem may only stamp last_used_ms"
        );
    }
}
