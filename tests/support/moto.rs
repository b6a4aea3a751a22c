//! moto's server as the local EventBridge of the publisher's tests: started on a free
//! 127.0.0.1 port (from the venv `make tools` installs: `$APIKEYS_CACHE/venv-moto`, or
//! `MOTO_SERVER`), stopped by its PID when the test drops it, and in any case after
//! [`LIFETIME`]. A bus of the test's own has a rule that sends each of its events to an SQS
//! queue in moto, which the test reads back to see what was published.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use apikeys::publish::EventBridgeBus;
use aws_sdk_eventbridge::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The longest a server lives, even if its test never drops it (a killed test binary).
pub const LIFETIME: Duration = Duration::from_secs(300);
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// A running moto server.
pub struct Moto {
    child: Child,
    pub url: String,
}

fn server() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return path.into();
    }
    // The clone's own cache, found at run time (a build cache may be shared between clones).
    let cache = std::env::var_os("APIKEYS_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_MANIFEST_DIR").map(|d| PathBuf::from(d).join("../.cache"))
        })
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("venv-moto/bin/moto_server")
}

fn free_port() -> u16 {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    socket.local_addr().unwrap().port()
}

impl Moto {
    /// Starts a server and waits (at most 30 s) until it listens.
    pub async fn start() -> Moto {
        let server = server();
        assert!(
            server.exists(),
            "{} is missing: `make tools` installs moto's server",
            server.display()
        );
        let port = free_port();
        // `timeout` bounds its life; stopping it by PID (SIGTERM) stops the server too.
        let child = Command::new("timeout")
            .arg(LIFETIME.as_secs().to_string())
            .arg(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", server.display()));
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "moto did not listen within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        moto
    }

    /// An EventBridge client of this server.
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        self.eventbridge_at(&self.url)
    }

    /// An EventBridge client of `url`, with moto's test credentials.
    pub fn eventbridge_at(&self, url: &str) -> aws_sdk_eventbridge::Client {
        let config = aws_sdk_eventbridge::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .endpoint_url(url)
            .http_client(apikeys::client::standard_http_client())
            .build();
        aws_sdk_eventbridge::Client::from_conf(config)
    }

    /// A new bus named `name`, whose every event a rule sends to a queue of the same name.
    pub async fn bus(&self, name: &str) -> EventBridgeBus {
        let client = self.eventbridge();
        client
            .create_event_bus()
            .name(name)
            .send()
            .await
            .expect("bus");
        self.sqs("CreateQueue", json!({"QueueName": name})).await;
        client
            .put_rule()
            .name("all")
            .event_bus_name(name)
            .event_pattern(r#"{"source": ["apikeys"]}"#)
            .send()
            .await
            .expect("rule");
        let target = aws_sdk_eventbridge::types::Target::builder()
            .id("queue")
            .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"))
            .build()
            .unwrap();
        client
            .put_targets()
            .rule("all")
            .event_bus_name(name)
            .targets(target)
            .send()
            .await
            .expect("target");
        EventBridgeBus::new(client, name)
    }

    /// The events the bus `name` delivered so far (each once: read messages stay hidden).
    pub async fn delivered(&self, name: &str) -> Vec<Value> {
        let queue = format!("{}/{ACCOUNT}/{name}", self.url);
        let mut out = Vec::new();
        loop {
            let body =
                json!({"QueueUrl": queue, "MaxNumberOfMessages": 10, "VisibilityTimeout": 3600});
            let answer = self.sqs("ReceiveMessage", body).await;
            let messages = answer["Messages"].as_array().cloned().unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                out.push(serde_json::from_str(m["Body"].as_str().unwrap()).unwrap());
            }
        }
    }

    /// One SQS call (JSON protocol). moto checks no signature, only which service it names.
    async fn sqs(&self, action: &str, body: Value) -> Value {
        let host = self.url.trim_start_matches("http://").to_owned();
        let stream = TcpStream::connect(&host).await.expect("moto");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/sqs/aws4_request, SignedHeaders=host, Signature=0"
        );
        let request = Request::post("/")
            .header("host", host)
            .header("x-amz-target", format!("AmazonSQS.{action}"))
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", auth)
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = sender.send_request(request).await.expect("SQS answers");
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert!(status.is_success(), "SQS {action}: {status} {bytes:?}");
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it to the server and exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
