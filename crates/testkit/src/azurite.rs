//! Azurite, the Azure Storage emulator (blob and queue services), on free loopback ports with
//! in-memory persistence. `tests/azurite.sh` installs it from npm (with the Node 22 it needs)
//! into `.ci/azurite` when missing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Azurite's one account and its documented key.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    _workspace: tempfile::TempDir,
    pub blob_port: u16,
    pub queue_port: u16,
}

/// The node binary and azurite's entry script, installed by `tests/azurite.sh` if missing.
fn installed() -> (PathBuf, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("tests/azurite.sh"))
        .current_dir(&root)
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs tests/azurite.sh");
    assert!(
        out.status.success(),
        "tests/azurite.sh could not install Azurite (it needs npm and the npm registry)"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().map(PathBuf::from);
    let node = lines
        .next()
        .expect("tests/azurite.sh prints the node binary");
    let script = lines
        .next()
        .expect("tests/azurite.sh prints azurite's script");
    (node, script)
}

impl Azurite {
    /// Starts Azurite; panics, saying why, when it cannot (tests never skip).
    pub fn start() -> Azurite {
        let (node, script) = installed();
        for _ in 0..5 {
            let workspace = tempfile::tempdir().expect("a workspace folder");
            let (blob_port, queue_port, table_port) =
                (crate::free_port(), crate::free_port(), crate::free_port());
            let mut child = Command::new(&node)
                .arg(&script)
                .args(["--silent", "--inMemoryPersistence", "--disableTelemetry"])
                .args(["--skipApiVersionCheck", "--loose"])
                // In-memory persistence refuses --location; it writes nothing, but runs here.
                .current_dir(workspace.path())
                .args([
                    "--blobHost",
                    "127.0.0.1",
                    "--blobPort",
                    &blob_port.to_string(),
                ])
                .args([
                    "--queueHost",
                    "127.0.0.1",
                    "--queuePort",
                    &queue_port.to_string(),
                ])
                .args([
                    "--tableHost",
                    "127.0.0.1",
                    "--tablePort",
                    &table_port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start Azurite ({}): {e}", node.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], blob_port));
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Azurite {
                        child,
                        _workspace: workspace,
                        blob_port,
                        queue_port,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("Azurite ({}) did not start on 127.0.0.1", script.display());
    }

    /// The blob endpoint, path style: `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.blob_port)
    }

    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};\
             BlobEndpoint={};QueueEndpoint=http://127.0.0.1:{}/{ACCOUNT};",
            self.blob_endpoint(),
            self.queue_port
        )
    }

    /// Environment for an `lpdrop` child process that should use this Azurite.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("AZURE_STORAGE_CONNECTION_STRING", self.connection_string())]
    }

    /// Creates a container (Create Container, signed with the account key).
    pub fn create_container(&self, name: &str) {
        let status = self.signed_request("PUT", &format!("/{name}"), &[("restype", "container")]);
        assert!(
            status == 201 || status == 409,
            "creating container {name}: HTTP {status}"
        );
    }

    /// A request of the blob service without a body, signed with Shared Key; its status.
    fn signed_request(&self, verb: &str, path: &str, query: &[(&str, &str)]) -> u16 {
        let date = chrono::Utc::now()
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let version = "2021-12-02";
        // Path-style URLs: the account is the first path segment, and appears twice here.
        let mut resource = format!("/{ACCOUNT}/{ACCOUNT}{path}");
        let mut sorted = query.to_vec();
        sorted.sort();
        for (k, v) in &sorted {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign = format!(
            "{verb}\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n{resource}"
        );
        let key = STANDARD
            .decode(ACCOUNT_KEY)
            .expect("the documented key is base64");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        mac.update(to_sign.as_bytes());
        let signature = STANDARD.encode(mac.finalize().into_bytes());
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let request = format!(
            "{verb} /{ACCOUNT}{path}?{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-ms-date: {date}\r\n\
             x-ms-version: {version}\r\nAuthorization: SharedKey {ACCOUNT}:{signature}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n",
            query.join("&"),
            self.blob_port
        );
        let mut stream =
            TcpStream::connect(("127.0.0.1", self.blob_port)).expect("Azurite accepts connections");
        stream
            .write_all(request.as_bytes())
            .expect("the request is sent");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status from Azurite: {answer:?}"))
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
