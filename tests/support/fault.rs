//! A fault-injecting TCP proxy on loopback, between the service and DynamoDB Local.
//!
//! It passes traffic through, delays every response chunk or every response, answers every
//! request (or only one operation's) with a fabricated DynamoDB `ThrottlingException`, holds
//! one operation's answers, answers as real DynamoDB may (stale reads, cancelled and
//! unclear transactions: see `realistic`), or stops listening altogether (connections are
//! refused, as when DynamoDB is down) and starts again on the same port. A change of
//! mode closes the connections opened under the old one, so the next request meets the
//! new mode whatever connection pool the SDK keeps.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::realistic::{self, Realism};

/// What the proxy does to the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Passes bytes through unchanged.
    None,
    /// Holds every chunk of every response this long before passing it on.
    Delay(Duration),
    /// Holds every response this long, whatever its size, before passing it on: each
    /// DynamoDB call takes this much longer, and succeeds.
    Latency(Duration),
    /// Answers every request with HTTP 400 and a DynamoDB `ThrottlingException`.
    Throttle,
    /// Throttles only this operation (`Query`, `GetItem`…), passing the others: the
    /// request authenticates, then its read fails.
    ThrottleOnly(&'static str),
    /// Holds the answers to this operation (`UpdateItem`…) this long, passing the others at
    /// once.
    DelayOnly(&'static str, Duration),
    /// Answers as real DynamoDB may (see `realistic` and [`FaultProxy::realistic`]).
    Realistic,
}

/// The fabricated answer DynamoDB gives a throttled request.
pub const THROTTLING_RESPONSE: &str = concat!(
    "HTTP/1.1 400 Bad Request\r\n",
    "Content-Type: application/x-amz-json-1.0\r\n",
    "x-amzn-RequestId: FAULTPROXY0000000000000000000000000000000000000000000\r\n",
    "Content-Length: 126\r\n",
    "\r\n",
    "{\"__type\":\"com.amazonaws.dynamodb.v20120810#ThrottlingException\",",
    "\"message\":\"Rate of requests exceeds the allowed throughput.\"}"
);

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<Fault>,
    listener: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
    realism: realistic::Shared,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port, in front of `upstream`.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = bind("127.0.0.1:0".parse().unwrap()).expect("bind a loopback port");
        let addr = listener.local_addr().expect("a bound address");
        let (mode, _) = watch::channel(Fault::None);
        let proxy = FaultProxy {
            addr,
            upstream,
            mode,
            listener: Mutex::new(None),
            connections: Arc::default(),
            realism: realistic::Shared::default(),
        };
        proxy.serve(listener);
        proxy
    }

    /// Starts a proxy in front of the DynamoDB Local of this test run.
    pub async fn in_front_of_dynamodb_local() -> FaultProxy {
        FaultProxy::start(crate::dynamodb_local_addr().await).await
    }

    /// `http://127.0.0.1:<port>`, for the SDK's endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Applies `fault` to every request from now on; closes every open connection.
    pub fn set(&self, fault: Fault) {
        self.mode.send_replace(fault);
        self.close_connections();
    }

    /// Answers as real DynamoDB may, as `realism` says, from now on; forgets the tokens and
    /// items of earlier transactions.
    pub fn realistic(&self, realism: Realism) {
        realistic::reset(&self.realism, realism);
        self.set(Fault::Realistic);
    }

    /// The `ClientRequestToken` of every transaction sent since [`Self::realistic`], in order.
    pub fn transaction_tokens(&self) -> Vec<String> {
        realistic::tokens(&self.realism)
    }

    /// Stops listening: connections are refused, as with DynamoDB down.
    pub fn stop(&self) {
        if let Some(task) = self.listener.lock().unwrap().take() {
            task.abort();
        }
        self.close_connections();
    }

    /// Listens again, on the same port.
    pub async fn resume(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match bind(self.addr) {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() > deadline => {
                    panic!("cannot listen on {} again: {e}", self.addr)
                }
                // The aborted accept loop releases the socket on its next poll.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }

    fn close_connections(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream;
        let mode = self.mode.subscribe();
        let connections = self.connections.clone();
        let realism = self.realism.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let fault = *mode.borrow();
                let realism = realism.clone();
                let task = tokio::spawn(async move {
                    let _ = match fault {
                        Fault::Realistic => realistic::serve(client, upstream, realism).await,
                        _ => handle(client, upstream, fault).await,
                    };
                });
                let mut open = connections.lock().unwrap();
                open.retain(|t| !t.is_finished());
                open.push(task);
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

async fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault) -> std::io::Result<()> {
    match fault {
        Fault::None | Fault::Realistic => {
            let mut server = TcpStream::connect(upstream).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        }
        Fault::Delay(delay) => {
            let server = TcpStream::connect(upstream).await?;
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let up = async {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            };
            let down = async {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = server_read.read(&mut buf).await?;
                    if n == 0 {
                        return client_write.shutdown().await;
                    }
                    tokio::time::sleep(delay).await;
                    client_write.write_all(&buf[..n]).await?;
                }
            };
            let (_, down) = tokio::join!(up, down);
            down?;
        }
        Fault::Throttle => loop {
            if read_request(&mut client).await?.is_none() {
                return Ok(());
            }
            client.write_all(THROTTLING_RESPONSE.as_bytes()).await?;
        },
        Fault::Latency(latency) => {
            let mut server = TcpStream::connect(upstream).await?;
            while let Some((head, body)) = read_request(&mut client).await? {
                server.write_all(&head).await?;
                server.write_all(&body).await?;
                let Some((head, body)) = read_request(&mut server).await? else {
                    return Ok(());
                };
                tokio::time::sleep(latency).await;
                client.write_all(&head).await?;
                client.write_all(&body).await?;
            }
        }
        Fault::ThrottleOnly(operation) | Fault::DelayOnly(operation, _) => {
            let target = format!(
                "x-amz-target: dynamodb_20120810.{}",
                operation.to_ascii_lowercase()
            );
            let mut server = TcpStream::connect(upstream).await?;
            while let Some((head, body)) = read_request(&mut client).await? {
                let targeted = String::from_utf8_lossy(&head)
                    .to_ascii_lowercase()
                    .contains(&target);
                if targeted && matches!(fault, Fault::ThrottleOnly(_)) {
                    client.write_all(THROTTLING_RESPONSE.as_bytes()).await?;
                    continue;
                }
                server.write_all(&head).await?;
                server.write_all(&body).await?;
                let Some((head, body)) = read_request(&mut server).await? else {
                    return Ok(());
                };
                if let (true, Fault::DelayOnly(_, delay)) = (targeted, fault) {
                    tokio::time::sleep(delay).await;
                }
                client.write_all(&head).await?;
                client.write_all(&body).await?;
            }
        }
    }
    Ok(())
}

/// Reads one HTTP/1.1 message (a request, or a response to a request that has one): its
/// head and its `Content-Length` body; `None` at end of stream.
pub(crate) async fn read_request(
    stream: &mut TcpStream,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await?;
    Ok(Some((head, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttling_response_says_its_length_truly() {
        let (head, body) = THROTTLING_RESPONSE.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(
            v["__type"]
                .as_str()
                .unwrap()
                .ends_with("#ThrottlingException")
        );
    }
}
