//! A local Lambda Runtime API (`/2018-06-01/runtime/...`), one per function process: it hands
//! out one event per `invocation/next`, and takes the answer at `invocation/<id>/response`
//! or `invocation/<id>/error`. It records when the first `next` arrives (the end of init)
//! and, per invocation, the time from handing out the event to receiving the answer (what
//! Lambda bills as duration).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::BoxError;

/// How long a function may take to start, or to answer one invocation.
pub const INIT_LIMIT: Duration = Duration::from_secs(30);
pub const INVOKE_LIMIT: Duration = Duration::from_secs(10);

struct Job {
    event: Bytes,
    done: oneshot::Sender<Answer>,
}

/// A function's answer to one event.
pub struct Answer {
    /// From the event leaving `next` to the answer arriving.
    pub duration: Duration,
    /// Whether it came to `/error` (or `/init/error`).
    pub error: bool,
    pub body: Bytes,
}

struct State {
    jobs: tokio::sync::Mutex<mpsc::Receiver<Job>>,
    pending: Mutex<HashMap<String, (Instant, oneshot::Sender<Answer>)>>,
    first_next: Mutex<Option<oneshot::Sender<Instant>>>,
    seq: Mutex<u64>,
}

/// How to start a function process: the program, its arguments, its working directory, and
/// the CPU quota it runs under.
pub struct Spawn<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: Option<&'a Path>,
    pub quota: Option<&'a crate::quota::Quota>,
}

impl<'a> Spawn<'a> {
    pub fn program(program: &'a Path) -> Spawn<'a> {
        Spawn {
            program,
            args: &[],
            cwd: None,
            quota: None,
        }
    }
}

/// A function process under its own runtime API.
pub struct Function {
    pub name: String,
    child: Child,
    jobs: Option<mpsc::Sender<Job>>,
    first_next: Option<oneshot::Receiver<Instant>>,
    spawned: Instant,
    /// Through a launcher: its stamp file, and the wall clock at `spawned`.
    launched: Option<(std::path::PathBuf, std::time::SystemTime)>,
    server: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r
}

/// A request's whole body; an unreadable one counts as empty.
async fn body_of(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Ok(reply(StatusCode::NOT_FOUND, Bytes::new()));
    };
    if req.method() == Method::GET && rest == "invocation/next" {
        let now = Instant::now();
        if let Some(tx) = lock(&state.first_next).take() {
            let _ = tx.send(now);
        }
        let job = state.jobs.lock().await.recv().await;
        let Some(job) = job else {
            return Ok(reply(StatusCode::GONE, Bytes::new()));
        };
        let id = {
            let mut seq = lock(&state.seq);
            *seq += 1;
            format!("bench-{:08}", *seq)
        };
        let deadline = chrono::Utc::now().timestamp_millis() + 6_000;
        let mut r = reply(StatusCode::OK, job.event);
        let h = r.headers_mut();
        h.insert("content-type", "application/json".parse().expect("valid"));
        h.insert("lambda-runtime-aws-request-id", id.parse().expect("valid"));
        h.insert("lambda-runtime-deadline-ms", deadline.into());
        h.insert(
            "lambda-runtime-invoked-function-arn",
            "arn:aws:lambda:us-east-1:123456789012:function:bench"
                .parse()
                .expect("valid"),
        );
        h.insert(
            "lambda-runtime-trace-id",
            "Root=1-00000000-000000000000000000000000;Sampled=0"
                .parse()
                .expect("valid"),
        );
        lock(&state.pending).insert(id, (Instant::now(), job.done));
        return Ok(r);
    }
    if req.method() == Method::POST {
        if let Some(tail) = rest.strip_prefix("invocation/") {
            let (id, kind) = tail.split_once('/').unwrap_or((tail, ""));
            let id = id.to_owned();
            let error = match kind {
                "response" => false,
                "error" => true,
                _ => return Ok(reply(StatusCode::NOT_FOUND, Bytes::new())),
            };
            let body = body_of(req).await;
            let arrived = Instant::now();
            if let Some((sent, done)) = lock(&state.pending).remove(&id) {
                let _ = done.send(Answer {
                    duration: arrived - sent,
                    error,
                    body,
                });
                return Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{}")));
            }
            return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new()));
        }
        if rest == "init/error" {
            let body = body_of(req).await;
            eprintln!("bench: init error: {}", String::from_utf8_lossy(&body));
            return Ok(reply(StatusCode::ACCEPTED, Bytes::from_static(b"{}")));
        }
    }
    Ok(reply(StatusCode::NOT_FOUND, Bytes::new()))
}

/// Serves the runtime API on `listener` until aborted.
fn serve(listener: TcpListener, state: Arc<State>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let state = state.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

impl Function {
    /// Starts `bin` with `env` (and the Lambda variables) under a new runtime API on a free
    /// loopback port. Its stdout (the log lines) is discarded; stderr goes to `stderr_to`.
    pub async fn start(
        name: &str,
        bin: &Path,
        env: &[(String, String)],
        stderr_to: &Path,
    ) -> Result<Function, BoxError> {
        Self::spawn(name, &Spawn::program(bin), env, stderr_to).await
    }

    /// As [`Function::start`], with arguments, a working directory and a CPU quota.
    pub async fn spawn(
        name: &str,
        how: &Spawn<'_>,
        env: &[(String, String)],
        stderr_to: &Path,
    ) -> Result<Function, BoxError> {
        let bin = how.program;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (first_tx, first_rx) = oneshot::channel();
        let state = Arc::new(State {
            jobs: tokio::sync::Mutex::new(jobs_rx),
            pending: Mutex::new(HashMap::new()),
            first_next: Mutex::new(Some(first_tx)),
            seq: Mutex::new(0),
        });
        let server = serve(listener, state);
        // Under a quota, a launcher joins the cgroup and execs the function (`launch`); init
        // counts from its stamp.
        let stamp = stderr_to.with_extension("stamp");
        let (program, args) = match how.quota {
            Some(q) => {
                match std::fs::remove_file(&stamp) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
                crate::launch::command(q.join_file(), &stamp, bin, how.args)
            }
            None => (bin.to_path_buf(), how.args.iter().map(Into::into).collect()),
        };
        let mut cmd = Command::new(&program);
        cmd.env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                how.quota
                    .map(|q| q.memory_mb)
                    .filter(|mb| *mb > 0)
                    .unwrap_or(128)
                    .to_string(),
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(stderr_to)?)
            .kill_on_drop(true);
        cmd.args(&args);
        if let Some(dir) = how.cwd {
            cmd.current_dir(dir);
        }
        let spawned = Instant::now();
        let spawned_wall = std::time::SystemTime::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Function {
            name: name.to_owned(),
            child,
            jobs: Some(jobs_tx),
            first_next: Some(first_rx),
            spawned,
            launched: how.quota.map(|_| (stamp, spawned_wall)),
            server,
        })
    }

    /// From process start (through a launcher: its stamp) to its first `next`.
    pub async fn init_time(&mut self) -> Result<Duration, BoxError> {
        let first = self.first_next.take().ok_or("init time already taken")?;
        tokio::select! {
            at = tokio::time::timeout(INIT_LIMIT, first) => {
                let at = at.map_err(|_| format!("{} did not call next within {INIT_LIMIT:?}", self.name))??;
                let start = match &self.launched {
                    Some((stamp, wall)) => crate::launch::init_start(stamp, self.spawned, *wall, at)?,
                    None => self.spawned,
                };
                Ok(at - start)
            }
            status = self.child.wait() => Err(format!("{} exited during init: {:?}", self.name, status?).into()),
        }
    }

    /// Sends one event and waits for the answer.
    pub async fn invoke(&mut self, event: Bytes) -> Result<Answer, BoxError> {
        let (done, answer) = oneshot::channel();
        let jobs = self.jobs.as_ref().ok_or("stopped")?;
        jobs.send(Job { event, done })
            .await
            .map_err(|_| "the runtime API is gone")?;
        tokio::select! {
            a = tokio::time::timeout(INVOKE_LIMIT, answer) => {
                Ok(a.map_err(|_| format!("{} did not answer within {INVOKE_LIMIT:?}", self.name))??)
            }
            status = self.child.wait() => Err(format!("{} exited: {:?}", self.name, status?).into()),
        }
    }

    /// The process's peak resident set (VmHWM), in bytes.
    pub fn peak_rss(&self) -> Result<u64, BoxError> {
        let pid = self.child.id().ok_or("the process has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let kb = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or("no VmHWM in /proc/<pid>/status")?;
        Ok(kb * 1024)
    }

    /// Kills the process (by its PID) and stops its runtime API.
    pub async fn stop(mut self) {
        self.jobs = None;
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        self.server.abort();
    }
}
