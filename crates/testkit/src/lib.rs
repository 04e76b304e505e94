//! Test support: real servers on 127.0.0.1, started by the test and stopped when dropped.
//!
//! Tests never skip when a server is missing: [`Moto::start`], [`Postgres::start`] and
//! [`azurite::Azurite::start`] fail
//! loudly, naming how to install them (`tests/run-all.sh` installs moto into `.ci/venv`;
//! `.ci/run` installs Debian's `postgresql`).

pub mod azurite;
pub mod cli;
pub mod contents;
pub mod fault_proxy;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server (S3, SQS and Glue emulator) on a free loopback port.
pub struct Moto {
    child: Child,
    pub url: String,
}

fn moto_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LPDROP_MOTO_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.ci/venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("moto_server")
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Moto {
    pub fn start() -> Moto {
        let bin = moto_binary();
        // Another process may take the port between probe and bind: try a few.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start moto ({}): {e}. Install it with `bash tests/run-all.sh` \
                         (into .ci/venv) or `pip install 'moto[server]'`, or set LPDROP_MOTO_SERVER",
                        bin.display()
                    )
                });
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited: the port was taken, or moto failed
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Moto {
                        child,
                        url: format!("http://127.0.0.1:{port}"),
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("moto ({}) did not start on 127.0.0.1", bin.display());
    }

    /// Environment for an `lpdrop` child process that should use this moto.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An S3 client for this moto, built without touching the process environment.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .force_path_style(true)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// A Glue client for this moto (the same server as S3), built without the environment.
    pub fn glue(&self) -> aws_sdk_glue::Client {
        let config = aws_sdk_glue::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.url)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_glue::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .build();
        aws_sdk_glue::Client::from_conf(config)
    }

    pub async fn create_bucket(&self, name: &str) -> aws_sdk_s3::Client {
        let s3 = self.s3();
        s3.create_bucket()
            .bucket(name)
            .send()
            .await
            .expect("create bucket on moto");
        s3
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway Postgres server from the machine's packages (Debian's `postgresql`): `initdb`
/// into a temp folder, then `pg_ctl start` on a free 127.0.0.1 port, trust authentication for
/// the user `lpdrop`. Postgres refuses to run as root, so as root the server runs as the
/// `postgres` user (which the Debian package creates) through `runuser`.
///
/// It is stopped (and its folder removed) when dropped, and also by a small watchdog when the
/// test process dies without dropping it (a panic in another thread, `SIGKILL`, or a `static`
/// server from [`Postgres::shared`]).
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    run_as: Option<String>,
    port: u16,
    /// With [`Postgres::start_tls`]: the CA that signed the server's certificate (for
    /// `sslrootcert=`), valid for `localhost` and `127.0.0.1`.
    pub ca_file: Option<PathBuf>,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

fn pg_bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("LPDROP_PG_BIN") {
        let dir = PathBuf::from(p);
        assert!(
            dir.join("initdb").exists() && dir.join("pg_ctl").exists(),
            "LPDROP_PG_BIN={} holds no initdb and pg_ctl: install the Postgres server with \
             `apt-get install -y postgresql` (`bash .ci/run` does), or point it at their folder",
            dir.display()
        );
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return dir;
        }
    }
    panic!(
        "the Postgres server is not installed (no initdb in /usr/lib/postgresql/*/bin or on \
         PATH): install it with `apt-get install -y postgresql` (`bash .ci/run` does), or set \
         LPDROP_PG_BIN to the folder holding initdb and pg_ctl"
    );
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// uid and gid of a user, from /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown for the postgres user");
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

impl Postgres {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        // The test's own folder may be closed to the postgres user.
        if let Some(dir) = &self.dir {
            c.current_dir(dir.path());
        }
        c
    }

    /// A new server, plain connections only.
    pub fn start() -> Postgres {
        Self::start_with(false)
    }

    /// A new server that also accepts TLS, with a certificate signed by [`Postgres::ca_file`].
    pub fn start_tls() -> Postgres {
        Self::start_with(true)
    }

    /// One server per test process, started on first use.
    pub fn shared() -> &'static Postgres {
        static SHARED: std::sync::OnceLock<Postgres> = std::sync::OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    fn start_with(tls: bool) -> Postgres {
        let bin = pg_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("lpdrop-pg-")
            .tempdir()
            .expect("a temp folder for Postgres");
        let run_as = running_as_root().then(|| "postgres".to_string());
        let mut pg = Postgres {
            bin,
            data: dir.path().join("data"),
            run_as,
            port: 0,
            ca_file: None,
            watchdog: None,
            dir: Some(dir),
        };
        let root = pg.dir.as_ref().unwrap().path().to_path_buf();
        let mut ssl_opts = String::new();
        if tls {
            pg.ca_file = Some(make_certificates(&root));
            ssl_opts = format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                root.display()
            );
        }
        if pg.run_as.is_some() {
            let (uid, gid) = user_ids("postgres").unwrap_or_else(|| {
                panic!(
                    "running as root, Postgres needs the `postgres` user to run as: install \
                     Debian's postgresql package (it creates the user)"
                )
            });
            chown_tree(&root, uid, gid);
        }
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-U",
                "lpdrop",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run initdb from {}: {e}. Install the Postgres server with \
                     `apt-get install -y postgresql` (`bash .ci/run` does), or set LPDROP_PG_BIN",
                    pg.bin.display()
                )
            });
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The watchdog stops the server and removes its folder once this process is gone.
        let stop = format!(
            "{}{} -D {} stop -m immediate",
            pg.run_as
                .as_ref()
                .map(|u| format!("runuser -u {u} -- "))
                .unwrap_or_default(),
            pg.bin.join("pg_ctl").display(),
            pg.data.display()
        );
        let script = format!(
            "while kill -0 {} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {}",
            std::process::id(),
            root.display()
        );
        pg.watchdog = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok();
        for _ in 0..5 {
            let port = free_port();
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {} -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300{ssl_opts}",
                root.display()
            );
            let out = pg
                .command("pg_ctl")
                .arg("-D")
                .arg(&pg.data)
                .arg("-l")
                .arg(root.join("server.log"))
                .args(["-w", "-t", "60", "-o", &options, "start"])
                .stdin(Stdio::null())
                .output()
                .expect("pg_ctl runs");
            if out.status.success() {
                pg.port = port;
                return pg;
            }
            eprintln!(
                "pg_ctl start on port {port} failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(root.join("server.log")).unwrap_or_default()
            );
        }
        panic!("Postgres did not start on 127.0.0.1");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database on this server (user `lpdrop`, no password, plain TCP).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://lpdrop@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates a fresh database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "lpdrop",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
            ])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    /// Runs SQL on a database with psql and returns its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "lpdrop",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
            ])
            .arg(sql)
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

/// A throwaway CA and a server certificate for localhost and 127.0.0.1, made with openssl in
/// `dir` (`server.crt`, `server.key`); the CA certificate's path.
pub fn make_certificates(dir: &std::path::Path) -> PathBuf {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl runs (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=lpdrop test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    dir.join("ca.crt")
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "immediate"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        drop(self.dir.take());
    }
}

/// `lpdrop emulator --port 0` as a child process, stopped when dropped.
pub struct EmulatorProcess {
    child: Child,
    /// The Domain API URL it printed (use as `LP_DOMAIN`).
    pub url: String,
}

impl EmulatorProcess {
    /// Starts `bin emulator --port 0 ARGS...` and reads its URL from the first line it prints.
    pub fn start(bin: &std::path::Path, args: &[&str]) -> EmulatorProcess {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(bin)
            .args(["emulator", "--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} emulator: {e}", bin.display()));
        let mut first = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        out.read_line(&mut first)
            .expect("the emulator prints its URL");
        // Keep reading so the emulator never writes into a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no URL in the emulator's first line {first:?}"))
            .to_string();
        EmulatorProcess { child, url }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
