//! The DynamoDB calls a function made, replayed with a bare SDK client: the floors that do
//! the same DynamoDB work as a function minus the function's own code.
//!
//! The harness records a function's calls through the recording proxy (operation, request
//! body, and when each started and ended). A replay sends the same requests through the
//! SDK's own typed operations, in the same order; calls that overlapped in the function
//! (the two last-use stamps of a verification) are sent together.
//!
//! Writes cannot be sent twice as they were: their conditions held once. A replay into a
//! *namespace* moves every written item to a partition of its own (`FLOOR#<n>#` before its
//! `pk`), so puts create new items as the function's did, and replaces each write's
//! condition with `attribute_not_exists(pk)`, which holds there: one condition evaluated per
//! item that had one, the same item sizes, the same index writes. A transaction's
//! `ClientRequestToken` is replaced by a fresh one. Reads are sent unchanged.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, Select, TransactWriteItem, Update,
};
use serde_json::{Map, Value};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One recorded call: its operation, its request body, and the group of calls it overlapped
/// with (calls of one group are sent together).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub op: String,
    pub request: Value,
    pub group: usize,
}

/// Numbers the groups of calls given with when each started and ended, in start order: a
/// call that starts before every call of the current group has ended joins it.
pub fn grouped(mut calls: Vec<(String, Value, Instant, Instant)>) -> Vec<Recorded> {
    calls.sort_by_key(|c| c.2);
    let mut out = Vec::with_capacity(calls.len());
    let mut group = 0;
    let mut open_until: Option<Instant> = None;
    for (op, request, started, ended) in calls {
        match open_until {
            Some(until) if started < until => open_until = Some(until.max(ended)),
            Some(_) => {
                group += 1;
                open_until = Some(ended);
            }
            None => open_until = Some(ended),
        }
        out.push(Recorded { op, request, group });
    }
    out
}

/// The calls as a JSON document (what the harness hands the floor process).
pub fn to_json(calls: &[Recorded]) -> Value {
    Value::Array(
        calls
            .iter()
            .map(|c| serde_json::json!({"op": c.op, "request": c.request, "group": c.group}))
            .collect(),
    )
}

pub fn from_json(doc: &Value) -> Result<Vec<Recorded>, BoxError> {
    doc.as_array()
        .ok_or("a replay is a JSON array")?
        .iter()
        .map(|c| {
            Ok(Recorded {
                op: c["op"].as_str().ok_or("a call without op")?.to_owned(),
                request: c["request"].clone(),
                group: usize::try_from(c["group"].as_u64().ok_or("a call without group")?)?,
            })
        })
        .collect()
}

/// The operations' names, in order: what a floor must match.
pub fn ops(calls: &[Recorded]) -> Vec<&str> {
    calls.iter().map(|c| c.op.as_str()).collect()
}

/// A replayed UpdateItem that its condition refused.
#[derive(Debug)]
pub struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a replayed UpdateItem failed its condition")
    }
}

impl std::error::Error for Refused {}

/// Sends the calls, group after group; with a namespace, writes go into it (see the module).
#[allow(dead_code)] // bench-floor's, and the warm owner floor's (`steps::verify_metered`)
pub async fn replay(
    client: &Client,
    calls: &[Recorded],
    namespace: Option<&str>,
) -> Result<(), BoxError> {
    match replay_counting(client, calls, namespace).await? {
        0 => Ok(()),
        _ => Err(Refused.into()),
    }
}

/// As [`replay`], but an UpdateItem its condition refuses is counted, not an error: a
/// function's call refused when it was recorded is refused again, the same work. Returns
/// how many were.
pub async fn replay_counting(
    client: &Client,
    calls: &[Recorded],
    namespace: Option<&str>,
) -> Result<usize, BoxError> {
    let mut refused = 0;
    let mut rest = calls;
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|c| c.group == first.group).count();
        let (group, tail) = rest.split_at(n);
        // Every call of a group is started before any is awaited, as in the function.
        let mut set = tokio::task::JoinSet::new();
        for c in group {
            let request = match namespace {
                Some(ns) => moved(&c.op, &c.request, ns),
                None => c.request.clone(),
            };
            let (client, op) = (client.clone(), c.op.clone());
            set.spawn(async move { send(&client, &op, &request).await });
        }
        for r in set.join_all().await {
            match r {
                Err(e) if e.is::<Refused>() => refused += 1,
                r => r?,
            }
        }
        rest = tail;
    }
    Ok(refused)
}

/// The request with its writes moved into `ns` (see the module); reads unchanged.
pub fn moved(op: &str, request: &Value, ns: &str) -> Value {
    let mut r = request.clone();
    match op {
        "UpdateItem" | "PutItem" | "DeleteItem" => move_write(&mut r, ns),
        "TransactWriteItems" => {
            if let Some(items) = r["TransactItems"].as_array_mut() {
                for item in items {
                    if let Some(m) = item.as_object_mut() {
                        for w in m.values_mut() {
                            move_write(w, ns);
                        }
                    }
                }
            }
            if r.get("ClientRequestToken").is_some() {
                r["ClientRequestToken"] = Value::from(uuid::Uuid::now_v7().to_string());
            }
        }
        _ => {}
    }
    r
}

/// One write (an UpdateItem request, or one item of a transaction) into `ns`.
fn move_write(w: &mut Value, ns: &str) {
    for field in ["Key", "Item"] {
        if let Some(Value::String(pk)) = w.get_mut(field).and_then(|k| k.pointer_mut("/pk/S")) {
            *pk = format!("{ns}{pk}");
        }
    }
    if w.get("ConditionExpression").is_some() {
        w["ConditionExpression"] = Value::from("attribute_not_exists(#floor_pk)");
        let names = w.as_object_mut().map(|m| {
            m.entry("ExpressionAttributeNames")
                .or_insert(Value::Object(Map::new()))
        });
        if let Some(Value::Object(names)) = names {
            names.insert("#floor_pk".into(), Value::from("pk"));
        }
    }
    prune(w);
}

/// Drops the expression names and values no expression of `w` uses any more.
fn prune(w: &mut Value) {
    let exprs: Vec<String> = [
        "ConditionExpression",
        "UpdateExpression",
        "ProjectionExpression",
        "KeyConditionExpression",
        "FilterExpression",
    ]
    .iter()
    .filter_map(|f| w.get(*f)?.as_str().map(str::to_owned))
    .collect();
    for (field, sigil) in [
        ("ExpressionAttributeNames", '#'),
        ("ExpressionAttributeValues", ':'),
    ] {
        let used: HashSet<String> = exprs.iter().flat_map(|e| tokens(e, sigil)).collect();
        let Some(Value::Object(m)) = w.get_mut(field) else {
            continue;
        };
        m.retain(|k, _| used.contains(k));
        if m.is_empty()
            && let Some(o) = w.as_object_mut()
        {
            o.remove(field);
        }
    }
}

/// The placeholders (`#name`, `:value`) an expression uses.
fn tokens(expr: &str, sigil: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != sigil {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if d.is_ascii_alphanumeric() || d == '_' {
                end = j + d.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        out.push(expr[i..end].to_owned());
    }
    out
}

fn text(v: &Value, field: &str) -> Option<String> {
    v.get(field)?.as_str().map(str::to_owned)
}

fn attribute(v: &Value) -> Result<AttributeValue, BoxError> {
    let (t, x) = v
        .as_object()
        .and_then(|m| m.iter().next())
        .ok_or_else(|| format!("not an attribute value: {v}"))?;
    let strings = |x: &Value| -> Result<Vec<String>, BoxError> {
        x.as_array()
            .ok_or("not a set")?
            .iter()
            .map(|s| Ok(s.as_str().ok_or("not a string")?.to_owned()))
            .collect()
    };
    Ok(match t.as_str() {
        "S" => AttributeValue::S(x.as_str().ok_or("S")?.to_owned()),
        "N" => AttributeValue::N(x.as_str().ok_or("N")?.to_owned()),
        "BOOL" => AttributeValue::Bool(x.as_bool().ok_or("BOOL")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(strings(x)?),
        "NS" => AttributeValue::Ns(strings(x)?),
        "L" => AttributeValue::L(
            x.as_array()
                .ok_or("L")?
                .iter()
                .map(attribute)
                .collect::<Result<_, _>>()?,
        ),
        "M" => AttributeValue::M(item(x)?),
        other => return Err(format!("attribute type {other} is not replayed").into()),
    })
}

fn item(v: &Value) -> Result<HashMap<String, AttributeValue>, BoxError> {
    v.as_object()
        .ok_or_else(|| format!("not an item: {v}"))?
        .iter()
        .map(|(k, a)| Ok((k.clone(), attribute(a)?)))
        .collect()
}

fn field_item(v: &Value, field: &str) -> Result<Option<HashMap<String, AttributeValue>>, BoxError> {
    v.get(field).map(item).transpose()
}

fn names(v: &Value) -> Option<HashMap<String, String>> {
    let m = v.get("ExpressionAttributeNames")?.as_object()?;
    Some(
        m.iter()
            .filter_map(|(k, n)| Some((k.clone(), n.as_str()?.to_owned())))
            .collect(),
    )
}

/// Sends one recorded request through the SDK's typed operation.
async fn send(client: &Client, op: &str, r: &Value) -> Result<(), BoxError> {
    match op {
        "GetItem" => {
            client
                .get_item()
                .set_table_name(text(r, "TableName"))
                .set_key(field_item(r, "Key")?)
                .set_consistent_read(r.get("ConsistentRead").and_then(Value::as_bool))
                .set_projection_expression(text(r, "ProjectionExpression"))
                .set_expression_attribute_names(names(r))
                .send()
                .await?;
        }
        "Query" => {
            client
                .query()
                .set_table_name(text(r, "TableName"))
                .set_index_name(text(r, "IndexName"))
                .set_key_condition_expression(text(r, "KeyConditionExpression"))
                .set_filter_expression(text(r, "FilterExpression"))
                .set_projection_expression(text(r, "ProjectionExpression"))
                .set_expression_attribute_names(names(r))
                .set_expression_attribute_values(field_item(r, "ExpressionAttributeValues")?)
                .set_exclusive_start_key(field_item(r, "ExclusiveStartKey")?)
                .set_limit(r.get("Limit").and_then(Value::as_i64).map(|l| l as i32))
                .set_scan_index_forward(r.get("ScanIndexForward").and_then(Value::as_bool))
                .set_consistent_read(r.get("ConsistentRead").and_then(Value::as_bool))
                .set_select(text(r, "Select").map(|s| Select::from(s.as_str())))
                .send()
                .await?;
        }
        "BatchGetItem" => {
            client
                .batch_get_item()
                .set_request_items(Some(batch_get_items(r)?))
                .send()
                .await?;
        }
        "UpdateItem" => update_item(client, r).await?,
        "TransactWriteItems" => {
            let items = r["TransactItems"]
                .as_array()
                .ok_or("TransactItems")?
                .iter()
                .map(transact_item)
                .collect::<Result<Vec<_>, _>>()?;
            client
                .transact_write_items()
                .set_transact_items(Some(items))
                .set_client_request_token(text(r, "ClientRequestToken"))
                .send()
                .await?;
        }
        other => return Err(format!("{other} is not replayed").into()),
    }
    Ok(())
}

/// A recorded UpdateItem, sent again; one its condition refuses is [`Refused`].
async fn update_item(client: &Client, r: &Value) -> Result<(), BoxError> {
    let out = client
        .update_item()
        .set_table_name(text(r, "TableName"))
        .set_key(field_item(r, "Key")?)
        .set_update_expression(text(r, "UpdateExpression"))
        .set_condition_expression(text(r, "ConditionExpression"))
        .set_expression_attribute_names(names(r))
        .set_expression_attribute_values(field_item(r, "ExpressionAttributeValues")?)
        .set_return_values(text(r, "ReturnValues").map(|s| ReturnValue::from(s.as_str())))
        .set_return_values_on_condition_check_failure(
            text(r, "ReturnValuesOnConditionCheckFailure")
                .map(|s| ReturnValuesOnConditionCheckFailure::from(s.as_str())),
        )
        .send()
        .await;
    match out {
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Err(Refused.into())
        }
        out => out.map(|_| ()).map_err(Into::into),
    }
}

/// The `RequestItems` of a recorded BatchGetItem.
fn batch_get_items(r: &Value) -> Result<HashMap<String, KeysAndAttributes>, BoxError> {
    let mut tables = HashMap::new();
    for (table, spec) in r["RequestItems"].as_object().ok_or("RequestItems")? {
        let keys = spec["Keys"]
            .as_array()
            .ok_or("Keys")?
            .iter()
            .map(item)
            .collect::<Result<Vec<_>, _>>()?;
        let k = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .set_consistent_read(spec.get("ConsistentRead").and_then(Value::as_bool))
            .set_projection_expression(text(spec, "ProjectionExpression"))
            .set_expression_attribute_names(names(spec))
            .build()?;
        tables.insert(table.clone(), k);
    }
    Ok(tables)
}

fn transact_item(t: &Value) -> Result<TransactWriteItem, BoxError> {
    let b = TransactWriteItem::builder();
    Ok(if let Some(p) = t.get("Put") {
        b.put(
            Put::builder()
                .set_table_name(text(p, "TableName"))
                .set_item(field_item(p, "Item")?)
                .set_condition_expression(text(p, "ConditionExpression"))
                .set_expression_attribute_names(names(p))
                .set_expression_attribute_values(field_item(p, "ExpressionAttributeValues")?)
                .build()?,
        )
        .build()
    } else if let Some(u) = t.get("Update") {
        b.update(
            Update::builder()
                .set_table_name(text(u, "TableName"))
                .set_key(field_item(u, "Key")?)
                .set_update_expression(text(u, "UpdateExpression"))
                .set_condition_expression(text(u, "ConditionExpression"))
                .set_expression_attribute_names(names(u))
                .set_expression_attribute_values(field_item(u, "ExpressionAttributeValues")?)
                .build()?,
        )
        .build()
    } else if let Some(d) = t.get("Delete") {
        b.delete(
            Delete::builder()
                .set_table_name(text(d, "TableName"))
                .set_key(field_item(d, "Key")?)
                .set_condition_expression(text(d, "ConditionExpression"))
                .set_expression_attribute_names(names(d))
                .set_expression_attribute_values(field_item(d, "ExpressionAttributeValues")?)
                .build()?,
        )
        .build()
    } else if let Some(c) = t.get("ConditionCheck") {
        b.condition_check(
            ConditionCheck::builder()
                .set_table_name(text(c, "TableName"))
                .set_key(field_item(c, "Key")?)
                .set_condition_expression(text(c, "ConditionExpression"))
                .set_expression_attribute_names(names(c))
                .set_expression_attribute_values(field_item(c, "ExpressionAttributeValues")?)
                .build()?,
        )
        .build()
    } else {
        return Err(format!("a transaction item not replayed: {t}").into());
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_moved_write_lands_in_its_namespace_with_a_condition_that_holds_there() {
        let update = json!({
            "TableName": "t",
            "Key": {"pk": {"S": "ORG#acme"}, "sk": {"S": "KEY#1"}},
            "UpdateExpression": "SET #used = :at",
            "ConditionExpression": "attribute_exists(#pk) AND #used < :stale",
            "ExpressionAttributeNames": {"#pk": "pk", "#used": "last_used"},
            "ExpressionAttributeValues": {":at": {"N": "2"}, ":stale": {"N": "1"}},
        });
        let m = moved("UpdateItem", &update, "FLOOR#7#");
        assert_eq!(m["Key"]["pk"]["S"], "FLOOR#7#ORG#acme");
        assert_eq!(m["Key"]["sk"]["S"], "KEY#1");
        assert_eq!(m["ConditionExpression"], "attribute_not_exists(#floor_pk)");
        assert_eq!(
            m["ExpressionAttributeNames"],
            json!({"#floor_pk": "pk", "#used": "last_used"})
        );
        assert_eq!(m["ExpressionAttributeValues"], json!({":at": {"N": "2"}}));
        // A read is sent as it was.
        assert_eq!(moved("GetItem", &update, "FLOOR#7#"), update);
    }

    #[test]
    fn a_moved_transaction_moves_every_item_and_gets_a_fresh_token() {
        let tx = json!({
            "ClientRequestToken": "abc",
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "SECRET#h"}, "sk": {"S": "SECRET"}},
                         "ConditionExpression": "attribute_not_exists(#pk)",
                         "ExpressionAttributeNames": {"#pk": "pk"}}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "ORG#a"}, "sk": {"S": "KEY#1"}}}},
            ],
        });
        let m = moved("TransactWriteItems", &tx, "FLOOR#1#");
        assert_eq!(
            m["TransactItems"][0]["Put"]["Item"]["pk"]["S"],
            "FLOOR#1#SECRET#h"
        );
        assert_eq!(
            m["TransactItems"][0]["Put"]["ExpressionAttributeNames"],
            json!({"#floor_pk": "pk"})
        );
        assert_eq!(
            m["TransactItems"][1]["Delete"]["Key"]["pk"]["S"],
            "FLOOR#1#ORG#a"
        );
        assert!(
            m["TransactItems"][1]["Delete"]
                .get("ConditionExpression")
                .is_none()
        );
        assert_ne!(m["ClientRequestToken"], "abc");
    }

    #[test]
    fn overlapping_calls_form_one_group() {
        let t0 = Instant::now();
        let at = |ms| t0 + std::time::Duration::from_millis(ms);
        let call = |op: &str, s, e| (op.to_owned(), Value::Null, at(s), at(e));
        let g = grouped(vec![
            call("GetItem", 0, 2),
            call("UpdateItem", 5, 8),
            call("UpdateItem", 6, 9),
            call("GetItem", 10, 11),
        ]);
        let groups: Vec<usize> = g.iter().map(|c| c.group).collect();
        assert_eq!(groups, [0, 1, 1, 2]);
        assert_eq!(ops(&g), ["GetItem", "UpdateItem", "UpdateItem", "GetItem"]);
    }
}
