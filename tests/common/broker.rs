//! A real MQTT broker for the tests: Debian's mosquitto on a free loopback
//! port, with a password file and, on request, TLS with a CA of its own.
//! Used by tests/mqtt.rs and by `lookout doctor`'s broker check.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The one user the broker takes.
pub const USER: &str = "lookout";
pub const PASSWORD: &str = "broker secret";
/// lookout's node id in the tests' MQTT config.
pub const NODE: &str = "testnode";

/// A mosquitto on 127.0.0.1 that takes only `USER` with `PASSWORD`.
pub struct Broker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    /// With TLS: the CA that signed the broker's certificate (PEM file).
    pub ca: Option<PathBuf>,
}

fn mosquitto() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "mosquitto".into())
}

impl Broker {
    pub fn start() -> Broker {
        Self::start_with(false)
    }

    /// A broker that speaks only TLS, with a certificate for 127.0.0.1
    /// signed by a CA of its own.
    pub fn start_tls() -> Broker {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Broker {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca = tls.then(|| make_certificates(dir.path()));
        let passwd = dir.path().join("passwd");
        let made = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&passwd)
            .args([USER, PASSWORD])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd runs (Debian package mosquitto)");
        assert!(made.success());
        // A port that was free a moment ago; another attempt if it is taken.
        let mut broker = Broker {
            dir,
            port: 0,
            child: None,
            ca,
        };
        for _ in 0..5 {
            broker.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            if broker.run() {
                return broker;
            }
        }
        panic!("mosquitto did not start");
    }

    /// Starts mosquitto on `self.port`; false if it could not listen there
    /// (another process took the port).
    fn run(&mut self) -> bool {
        let conf = self.dir.path().join("mosquitto.conf");
        let log = self.dir.path().join("mosquitto.log");
        let _ = std::fs::remove_file(&log);
        let mut text = format!(
            "listener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\npersistence false\n\
             log_dest file {}\nlog_type all\n",
            self.port,
            self.dir.path().join("passwd").display(),
            log.display()
        );
        if self.ca.is_some() {
            let d = self.dir.path();
            text.push_str(&format!(
                "certfile {}\nkeyfile {}\n",
                d.join("server.pem").display(),
                d.join("server.key").display()
            ));
        }
        if rustix::process::getuid().is_root() {
            // Else mosquitto drops to its own user, who cannot read the
            // private temporary folder.
            text.push_str("user root\n");
        }
        std::fs::write(&conf, text).expect("write config");
        let mut child = Command::new(mosquitto())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts (Debian package mosquitto)");
        // Its own log says when it listens: a connection alone could reach
        // another test's broker that took the port first.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            if said.contains(" running") && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                self.child = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The broker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// The client ids lookout connected with, in order (from the broker's
    /// log: `New client connected from ADDR as ID (p5, ...)`); the test
    /// clients are `test-...`.
    pub fn lookout_ids(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| {
                l.split_once("New client connected from ")?
                    .1
                    .split_once(" as ")
            })
            .filter_map(|(_, rest)| rest.split_once(" (").map(|(id, _)| id.to_string()))
            .filter(|id| !id.starts_with("test-"))
            .collect()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port, retained messages gone
    /// (no persistence), as after a power cut.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !self.run() {
            assert!(
                std::time::Instant::now() < deadline,
                "mosquitto did not restart"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca.is_some() { "mqtts" } else { "mqtt" };
        format!("{scheme}://{USER}@127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> lookout::mqtt::MqttConfig {
        lookout::mqtt::MqttConfig::new(
            &self.url(),
            Some(PASSWORD.into()),
            self.ca.clone(),
            None,
            None,
            Some(NODE.into()),
            true,
        )
        .expect("mqtt config")
    }
}

/// A CA and a broker certificate for 127.0.0.1 signed by it, in `dir`;
/// returns the CA's PEM file.
fn make_certificates(dir: &Path) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    ca_file
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
