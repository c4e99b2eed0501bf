//! A webhook receiver in the test process: a small HTTP/1.1 server on 127.0.0.1 that
//! records every request and answers with the statuses it is given, and the reference
//! verifier of Standard Webhooks (the `standardwebhooks` package from PyPI) to check
//! signatures with.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path.
    pub path: String,
    /// The headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The body as sent.
    pub body: String,
}

impl Received {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON.
    #[must_use]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer, in order; then `usual`.
    next: VecDeque<u16>,
    usual: u16,
    delay: StdDuration,
    location: Option<String>,
    received: Vec<Received>,
}

/// The receiver; it stops serving when dropped.
pub struct Receiver {
    /// Its address.
    pub address: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Starts answering `usual` to every request, on a free port.
    ///
    /// # Panics
    /// When no port can be bound.
    pub async fn start(usual: u16) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("address"), usual).await
    }

    /// Starts on `address` (to come back on the port of a receiver that stopped).
    ///
    /// # Panics
    /// When the address cannot be bound.
    pub async fn start_on(address: SocketAddr, usual: u16) -> Self {
        let script = Arc::new(Mutex::new(Script {
            usual,
            ..Script::default()
        }));
        let listener = TcpListener::bind(address).await.expect("bind the receiver");
        let address = listener.local_addr().expect("local address");
        let shared = script.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self {
            address,
            script,
            task,
        }
    }

    /// The URL of a path on the receiver.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers these statuses first, in order.
    ///
    /// # Panics
    /// When a test thread panicked while holding the script.
    pub fn answer_first(&self, statuses: &[u16]) {
        self.lock().next.extend(statuses);
    }

    /// Waits this long before answering.
    pub fn delay(&self, delay: StdDuration) {
        self.lock().delay = delay;
    }

    /// Sends this `Location` with every answer (for redirects).
    pub fn location(&self, location: &str) {
        self.lock().location = Some(location.to_owned());
    }

    /// What it received so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Waits until it received at least `count` requests, or `within` passed.
    pub async fn wait_for(&self, count: usize, within: StdDuration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: tokio::net::TcpStream, script: Arc<Mutex<Script>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 8192];
    let header_end = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    let (status, delay, location) = {
        let mut script = script
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        script.received.push(Received {
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        let status = script.next.pop_front().unwrap_or(script.usual);
        (status, script.delay, script.location.clone())
    };
    tokio::time::sleep(delay).await;
    let location = location
        .map(|location| format!("location: {location}\r\n"))
        .unwrap_or_default();
    let answer =
        format!("HTTP/1.1 {status} X\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n");
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Checks a received request with the reference verifier of Standard Webhooks
/// (`standardwebhooks==1.0.0` from PyPI, in a virtual environment made once in the
/// temporary directory): `Webhook(secret).verify(body, headers)`. `Ok(())` when it
/// accepts, `Err` with its message otherwise.
///
/// # Panics
/// When Python or the package cannot be installed.
pub fn verify_with_reference(secret: &str, received: &Received) -> Result<(), String> {
    let python = reference_python().unwrap_or_else(|error| panic!("{error}"));
    let script = "import json, sys\n\
        from standardwebhooks import Webhook\n\
        given = json.load(sys.stdin)\n\
        try:\n\
        \x20   Webhook(given['secret']).verify(given['body'], given['headers'])\n\
        \x20   print('ok')\n\
        except Exception as error:\n\
        \x20   print('refused: %r' % (error,))\n";
    let input = serde_json::json!({
        "secret": secret,
        "body": received.body,
        "headers": received.headers,
    });
    let mut child = std::process::Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.to_string().as_bytes())
            .expect("write to python");
    }
    let output = child.wait_with_output().expect("python ends");
    let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if said == "ok" { Ok(()) } else { Err(said) }
}

/// A Python with `standardwebhooks==1.0.0`, in a virtual environment made once.
fn reference_python() -> Result<std::path::PathBuf, String> {
    static PYTHON: std::sync::OnceLock<Result<std::path::PathBuf, String>> =
        std::sync::OnceLock::new();
    PYTHON
        .get_or_init(|| {
            crate::python_with(
                "import importlib.metadata as m; \
                 assert m.version('standardwebhooks') == '1.0.0'",
                false,
                "orgs-tests-webhooks-venv",
                "standardwebhooks==1.0.0",
            )
        })
        .clone()
}
