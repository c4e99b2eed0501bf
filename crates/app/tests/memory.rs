//! The `orgs` binary's memory under floods of unauthenticated requests that could make
//! it hash passwords (CONTRACT §9): the process's peak resident memory, read from
//! `/proc/<pid>/status`, stays within 100 MiB of its idle size.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_orgs");

/// How far above its idle size the process may grow, in KiB.
const BUDGET_KIB: u64 = 100 * 1024;

/// A running `orgs serve` on a fresh SQLite file, stopped when dropped.
struct Served {
    child: Child,
    port: u16,
    _directory: tempfile::TempDir,
}

impl Served {
    fn start(environment: &[(&str, &str)]) -> Self {
        let directory = tempfile::tempdir().expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free port");
        let mut child = Command::new(BINARY)
            .envs(environment.iter().copied())
            .env(
                "ORGS_DATABASE_URL",
                format!("sqlite://{}", directory.path().join("orgs.db").display()),
            )
            .env("ORGS_LISTEN", format!("127.0.0.1:{port}"))
            .env("ORGS_LOG", "info")
            .env_remove("ORGS_SMTP_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("orgs starts");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // Keep draining after the start, so that the child never blocks on a full pipe.
                let _ = sender.send(line);
            }
        });
        // Owned from here on: a failed start still stops the child (in `drop`).
        let served = Self {
            child,
            port,
            _directory: directory,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match receiver.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.contains("listening") => return served,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("orgs did not start; saw:\n{}", seen.join("\n"));
    }

    /// A field of `/proc/<pid>/status` in KiB, such as `VmRSS` or `VmHWM`.
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process status");
        status
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().trim_end_matches("kB").trim().parse().ok()
            })
            .unwrap_or_else(|| panic!("no {field} in\n{status}"))
    }

    /// Resets the peak (`VmHWM`) to the current resident size.
    fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("the peak resets");
    }

    /// Posts `body` to `path` and returns the status.
    fn post(&self, path: &str, body: &str) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connected");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("a timeout");
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("sent");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("an answer");
        response
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"))
    }

    /// Sends `bodies` to `path` all at once; returns the statuses.
    fn flood(&self, path: &'static str, bodies: Vec<String>) -> Vec<u16> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = bodies
                .iter()
                .map(|body| scope.spawn(move || self.post(path, body)))
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("a request thread"))
                .collect()
        })
    }

    /// Runs `flood` after a warm-up request and returns (idle size, peak during it) in KiB.
    fn peak_around(&self, warm_up: (&str, &str), flood: impl FnOnce()) -> (u64, u64) {
        self.post(warm_up.0, warm_up.1);
        std::thread::sleep(Duration::from_millis(200));
        let idle = self.memory_kib("VmRSS");
        self.reset_peak();
        flood();
        let peak = self.memory_kib("VmHWM");
        eprintln!("idle {idle} KiB, peak {peak} KiB");
        (idle, peak)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn accept_body(n: usize) -> String {
    format!(
        r#"{{"token": "bogus-token-{n}", "password": "a long enough password", "first_name": "Eve", "last_name": "Attacker"}}"#
    )
}

#[test]
fn a_hundred_parallel_bogus_acceptances_stay_within_100_mib_of_idle() {
    let served = Served::start(&[]);
    let mut statuses = Vec::new();

    let (idle, peak) = served.peak_around(("/invitations/accept/", &accept_body(0)), || {
        statuses = served.flood("/invitations/accept/", (1..=100).map(accept_body).collect());
    });

    assert!(statuses.iter().all(|status| *status == 400), "{statuses:?}");
    assert!(
        peak < idle + BUDGET_KIB,
        "idle {idle} KiB, peak {peak} KiB: more than 100 MiB above idle"
    );
}

#[test]
fn a_hundred_parallel_logins_of_unknown_identifiers_stay_within_100_mib_of_idle() {
    // Every one of these verifies a (decoy) hash: the slots bound how many at once.
    let served = Served::start(&[("ORGS_HASH_CONCURRENCY", "2"), ("ORGS_HASH_WAIT", "120s")]);
    let login = |n: usize| {
        format!(r#"{{"identifier": "nobody{n}@example.com", "password": "a wrong password"}}"#)
    };
    let mut statuses = Vec::new();

    let (idle, peak) = served.peak_around(("/auth/token/", &login(0)), || {
        statuses = served.flood("/auth/token/", (1..=100).map(login).collect());
    });

    assert!(statuses.iter().all(|status| *status == 400), "{statuses:?}");
    assert!(
        peak < idle + BUDGET_KIB,
        "idle {idle} KiB, peak {peak} KiB: more than 100 MiB above idle"
    );
}
