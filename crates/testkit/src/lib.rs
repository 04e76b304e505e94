//! Test support: real servers on 127.0.0.1, started by the test and stopped when dropped.
//!
//! Tests never skip when a server is missing: [`Moto::start`] fails loudly, naming how to
//! install it (`tests/run-all.sh` installs moto into `.ci/venv`).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A moto server (S3 and SQS emulator) on a free loopback port.
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

fn free_port() -> u16 {
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
