//! A real PgBouncer in transaction mode in front of the test PostgreSQL, started on a free
//! port with an ini file of its own in a temporary directory, not as a daemon.
//!
//! Only the standard library is used: storage tests of other crates include this file
//! with `#[path]`. A missing `pgbouncer` fails the test with what to install.
//!
//! The process is started under `sh`, which stops it when its standard input closes:
//! when the `PgBouncer` value is dropped, or when the test process ends (a shared
//! instance lives in a `static`, which is never dropped).

#![allow(dead_code)]

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the pooled databases live (the server the test databases are made on).
const SERVER_HOST: &str = "127.0.0.1";
/// Its port.
const SERVER_PORT: u16 = 5432;

/// A running PgBouncer, stopped when dropped.
pub struct PgBouncer {
    port: u16,
    pool_size: u32,
    directory: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
}

/// The `pgbouncer` executable: on the `PATH`, or where Debian puts it.
fn executable() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    for directory in candidates {
        let candidate = directory.join("pgbouncer");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "pgbouncer is not installed: the transaction-mode pooler tests need it \
         (Debian: `apt-get install -y pgbouncer`; `.ci/run` installs it)"
    );
}

/// Whether this process runs as root (PgBouncer refuses to, unless told which user to
/// become).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The settings of one pooler: transaction mode, `pool_size` server connections per
/// database, any database of the test server (`*`), trust authentication of `postgres`.
fn ini(port: u16, pool_size: u32, directory: &Path) -> String {
    let directory = directory.display();
    format!(
        "[databases]\n\
         * = host={SERVER_HOST} port={SERVER_PORT}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir = {directory}\n\
         pidfile = {directory}/pgbouncer.pid\n\
         logfile = {directory}/pgbouncer.log\n\
         auth_type = trust\n\
         auth_file = {directory}/users.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {pool_size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 2000\n\
         max_db_connections = {pool_size}\n"
    )
}

impl PgBouncer {
    /// Starts one with `pool_size` server connections per database; waits until it
    /// accepts connections.
    ///
    /// # Panics
    /// When `pgbouncer` is not installed or does not start.
    #[must_use]
    pub fn start(pool_size: u32) -> Self {
        let executable = executable();
        let port = free_port();
        let directory =
            std::env::temp_dir().join(format!("orgs-pgbouncer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("the pooler's directory");
        let ini_path = directory.join("pgbouncer.ini");
        std::fs::write(&ini_path, ini(port, pool_size, &directory)).expect("pgbouncer.ini");
        std::fs::write(directory.join("users.txt"), "\"postgres\" \"\"\n").expect("users.txt");
        let mut arguments = vec![ini_path.display().to_string()];
        if running_as_root() {
            // PgBouncer will not run as root: it becomes `nobody`, who must be able to
            // read its files and write its log, pid file and socket.
            permit_everyone(&directory);
            arguments.insert(0, "nobody".to_owned());
            arguments.insert(0, "-u".to_owned());
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("\"$0\" \"$@\" & pid=$!; read -r _; kill $pid 2>/dev/null; wait $pid")
            .arg(&executable)
            .args(&arguments)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // It logs to its log file as well (`PgBouncer::log`).
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer starts");
        let stdin = child.stdin.take();
        let bouncer = Self {
            port,
            pool_size,
            directory,
            child,
            stdin,
        };
        bouncer.wait_until_listening();
        bouncer
    }

    /// One per test binary, with five server connections per database.
    pub fn shared() -> &'static Self {
        static SHARED: OnceLock<PgBouncer> = OnceLock::new();
        SHARED.get_or_init(|| Self::start(5))
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.directory.join("pgbouncer.log")).unwrap_or_default();
        panic!(
            "pgbouncer did not start listening on port {}:\n{log}",
            self.port
        );
    }

    /// Its port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How many server connections it opens per database.
    #[must_use]
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// The URL of `database` through it.
    #[must_use]
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// `url` (a URL of the test server) with its host and port replaced by this pooler's.
    #[must_use]
    pub fn route(&self, url: &str) -> String {
        let database = url.rsplit_once('/').map_or(url, |(_, database)| database);
        self.url(database)
    }

    /// What it logged so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.directory.join("pgbouncer.log")).unwrap_or_default()
    }
}

fn permit_everyone(directory: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    let everyone = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(directory, everyone.clone()).expect("the pooler's directory");
    for file in ["pgbouncer.ini", "users.txt"] {
        std::fs::set_permissions(directory.join(file), std::fs::Permissions::from_mode(0o644))
            .expect("the pooler's files");
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            // Closing the pipe is what stops it; the line only wakes `read` sooner.
            drop(stdin.write_all(b"stop\n"));
        }
        drop(self.child.wait());
        drop(std::fs::remove_dir_all(&self.directory));
    }
}
