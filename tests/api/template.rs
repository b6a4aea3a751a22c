//! The table that the code creates (`apikeys create-table`, `make run`, these tests) and the
//! one that template.yaml deploys must have the same keys and indexes: a query that works
//! locally must work in AWS.

use std::collections::BTreeSet;
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

fn template_table() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).expect("read template.yaml");
    let template: Value = serde_yaml_ng::from_str(&text).expect("template.yaml is YAML");
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
