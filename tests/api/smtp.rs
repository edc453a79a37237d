//! The email tests' peers: a test CA (rcgen) with a leaf for 127.0.0.1 and a self-signed leaf
//! outside it; a real SMTP relay on loopback (`tests/smtp/server.py`, aiosmtpd, installed by
//! `tests/deps`) in a subprocess that exits when its standard input closes; relays that
//! misbehave ([`SilentRelay`], [`ClosingRelay`]); and the received messages, parsed with a real
//! MIME parser (mail-parser).

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mail_parser::{HeaderValue, MessageParser, MimeHeaders as _};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate authority made for one test, and certificates for a relay on 127.0.0.1, as
/// PEM files in a temporary folder.
pub struct TestCa {
    _dir: tempfile::TempDir,
    /// The CA's certificate: what `CAPUTCHIN_TLS_EXTRA_ROOTS` names.
    pub ca_pem: PathBuf,
    /// An end-entity certificate for 127.0.0.1 and localhost, signed by the CA, and its key.
    pub leaf_cert: PathBuf,
    pub leaf_key: PathBuf,
    /// A self-signed certificate for the same names, under no root anyone trusts, and its key.
    pub self_signed_cert: PathBuf,
    pub self_signed_key: PathBuf,
}

fn names() -> Vec<String> {
    vec!["127.0.0.1".into(), "localhost".into()]
}

fn leaf_params() -> CertificateParams {
    let mut params = CertificateParams::new(names()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "relay.test");
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };

        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Caputchin Test CA");
        ca_params.distinguished_name = dn;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let leaf_key = KeyPair::generate().unwrap();
        let leaf = leaf_params().signed_by(&leaf_key, &ca, &ca_key).unwrap();

        let lone_key = KeyPair::generate().unwrap();
        let lone = leaf_params().self_signed(&lone_key).unwrap();

        TestCa {
            ca_pem: write("ca.pem", ca.pem()),
            leaf_cert: write("leaf.pem", leaf.pem()),
            leaf_key: write("leaf-key.pem", leaf_key.serialize_pem()),
            self_signed_cert: write("self-signed.pem", lone.pem()),
            self_signed_key: write("self-signed-key.pem", lone_key.serialize_pem()),
            _dir: dir,
        }
    }
}

/// How the relay protects its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    Plain,
    StartTls,
    Implicit,
}

/// Options for [`SmtpServer`]; `start()` runs it.
pub struct SmtpServerBuilder {
    tls: Protection,
    cert: Option<(PathBuf, PathBuf)>,
    auth: Option<(String, String)>,
    reply_rcpt: Option<u16>,
    reply_data: Option<u16>,
    delay_data_ms: u64,
    no_pipelining: bool,
    chunking: bool,
}

impl SmtpServerBuilder {
    /// STARTTLS or implicit TLS with this certificate and key.
    pub fn tls(mut self, tls: Protection, cert: &Path, key: &Path) -> Self {
        self.tls = tls;
        self.cert = Some((cert.to_owned(), key.to_owned()));
        self
    }

    /// Requires AUTH (PLAIN or LOGIN) with these credentials.
    pub fn auth(mut self, user: &str, password: &str) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Answers every RCPT with this code.
    pub fn reply_rcpt(mut self, code: u16) -> Self {
        self.reply_rcpt = Some(code);
        self
    }

    /// Answers the end of DATA with this code.
    pub fn reply_data(mut self, code: u16) -> Self {
        self.reply_data = Some(code);
        self
    }

    /// Does not offer PIPELINING (it does by default, as common relays do).
    pub fn no_pipelining(mut self) -> Self {
        self.no_pipelining = true;
        self
    }

    /// Also offers CHUNKING (BDAT), as Postfix and Exim do.
    pub fn chunking(mut self) -> Self {
        self.chunking = true;
        self
    }

    /// Waits this long before answering the end of DATA.
    pub fn delay_data_ms(mut self, ms: u64) -> Self {
        self.delay_data_ms = ms;
        self
    }

    pub fn start(self) -> SmtpServer {
        let out = tempfile::tempdir().unwrap();
        let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/.venv/bin/python");
        let python = if venv.exists() {
            venv
        } else {
            PathBuf::from("python3")
        };
        let mut cmd = Command::new(&python);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/server.py"))
            .arg("--out")
            .arg(out.path())
            .arg("--tls")
            .arg(match self.tls {
                Protection::Plain => "none",
                Protection::StartTls => "starttls",
                Protection::Implicit => "implicit",
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((cert, key)) = &self.cert {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        if let Some((user, password)) = &self.auth {
            cmd.arg("--auth").arg(format!("{user}:{password}"));
        }
        if let Some(code) = self.reply_rcpt {
            cmd.arg("--reply-rcpt").arg(code.to_string());
        }
        if let Some(code) = self.reply_data {
            cmd.arg("--reply-data").arg(code.to_string());
        }
        if self.no_pipelining {
            cmd.arg("--no-pipelining");
        }
        if self.chunking {
            cmd.arg("--chunking");
        }
        if self.delay_data_ms > 0 {
            cmd.arg("--delay-data-ms")
                .arg(self.delay_data_ms.to_string());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; run tests/deps", python.display()));
        let stdin = child.stdin.take();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port: u16 = first.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP relay did not start (is aiosmtpd installed? run tests/deps)")
        });
        SmtpServer {
            child,
            _stdin: stdin,
            port,
            tls: self.tls,
            auth: self.auth,
            out,
        }
    }
}

/// A running relay. Dropping it ends the process.
pub struct SmtpServer {
    child: Child,
    _stdin: Option<ChildStdin>,
    pub port: u16,
    tls: Protection,
    auth: Option<(String, String)>,
    out: tempfile::TempDir,
}

impl SmtpServer {
    pub fn builder() -> SmtpServerBuilder {
        SmtpServerBuilder {
            tls: Protection::Plain,
            cert: None,
            auth: None,
            reply_rcpt: None,
            reply_data: None,
            delay_data_ms: 0,
            no_pipelining: false,
            chunking: false,
        }
    }

    /// `CAPUTCHIN_SMTP_URL` for this relay, with its credentials.
    pub fn url(&self) -> String {
        let credentials = self
            .auth
            .as_ref()
            .map(|(u, p)| format!("{u}:{p}@"))
            .unwrap_or_default();
        self.url_with_credentials(&credentials)
    }

    /// `CAPUTCHIN_SMTP_URL` for this relay with another `user:password@` (or none: "").
    pub fn url_with_credentials(&self, credentials: &str) -> String {
        let (scheme, suffix) = match self.tls {
            Protection::Plain => ("smtp", "?tls=none"),
            Protection::StartTls => ("smtp", ""),
            Protection::Implicit => ("smtps", ""),
        };
        format!("{scheme}://{credentials}127.0.0.1:{}{suffix}", self.port)
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        let mut emls: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        emls.sort();
        emls.into_iter()
            .map(|eml| {
                let envelope: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(eml.with_extension("json")).unwrap())
                        .unwrap();
                Received {
                    raw: std::fs::read(&eml).unwrap(),
                    mail_from: envelope["mail_from"].as_str().unwrap().to_owned(),
                    rcpt_tos: envelope["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_owned())
                        .collect(),
                    via: envelope["via"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived (panics after `timeout`), then returns them all.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} messages arrived within {timeout:?}",
                messages.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// How many connections the relay accepted so far.
    pub fn connection_count(&self) -> usize {
        std::fs::read_to_string(self.out.path().join("connections"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message as the relay received it, with its envelope.
#[derive(Debug, Clone)]
pub struct Received {
    /// The bytes after DATA, as received.
    pub raw: Vec<u8>,
    /// MAIL FROM.
    pub mail_from: String,
    /// Every accepted RCPT TO.
    pub rcpt_tos: Vec<String>,
    /// The command that carried it: "DATA" or "BDAT".
    pub via: String,
}

fn value_text(value: &HeaderValue<'_>) -> String {
    match value {
        HeaderValue::Text(t) => t.to_string(),
        HeaderValue::TextList(list) => list.join(", "),
        HeaderValue::Address(address) => address
            .iter()
            .map(|a| match (a.name(), a.address()) {
                (Some(n), Some(e)) => format!("{n} <{e}>"),
                (None, Some(e)) => e.to_owned(),
                (Some(n), None) => n.to_owned(),
                (None, None) => String::new(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => format!("{other:?}"),
    }
}

impl Received {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .expect("a MIME message")
    }

    /// The top-level header block as received, folded lines joined.
    pub fn raw_header_lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines: Vec<String> = Vec::new();
        for line in head.split("\r\n") {
            match lines.last_mut() {
                Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
                _ => lines.push(line.to_owned()),
            }
        }
        lines
    }

    /// The names of the top-level headers, lowercased, in order, read from the raw bytes.
    pub fn header_names(&self) -> Vec<String> {
        self.raw_header_lines()
            .iter()
            .map(|l| {
                l.split_once(':')
                    .map_or(l.as_str(), |(n, _)| n)
                    .to_ascii_lowercase()
            })
            .collect()
    }

    /// Every occurrence of a top-level header, decoded, as the parser reads it.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let parsed = self.parsed();
        parsed
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .map(|h| value_text(h.value()))
            .collect()
    }

    /// The addresses of every occurrence of an address header.
    pub fn addresses(&self, name: &str) -> Vec<String> {
        let parsed = self.parsed();
        parsed
            .headers()
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case(name))
            .flat_map(|h| match h.value() {
                HeaderValue::Address(a) => a
                    .iter()
                    .filter_map(|a| a.address().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn parts_of_type(&self, subtype: &str) -> Vec<String> {
        let parsed = self.parsed();
        parsed
            .parts
            .iter()
            .filter(|p| {
                p.content_type().is_some_and(|c| {
                    c.ctype().eq_ignore_ascii_case("text")
                        && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
                })
            })
            .map(|p| p.text_contents().unwrap().replace("\r\n", "\n"))
            .collect()
    }

    /// The one text/plain part, decoded, its CRLF line ends read as LF.
    pub fn text(&self) -> String {
        let parts = self.parts_of_type("plain");
        assert_eq!(parts.len(), 1, "one text/plain part");
        parts.into_iter().next().unwrap()
    }

    /// The one text/html part, decoded, its CRLF line ends read as LF.
    pub fn html(&self) -> String {
        let parts = self.parts_of_type("html");
        assert_eq!(parts.len(), 1, "one text/html part");
        parts.into_iter().next().unwrap()
    }
}

/// A relay that accepts connections and never says a word (no greeting).
pub struct SilentRelay {
    pub port: u16,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl SilentRelay {
    pub fn start() -> SilentRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let keep = held.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        SilentRelay { port, held }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }

    /// Connections accepted and still held open.
    pub fn connection_count(&self) -> usize {
        self.held.lock().unwrap().len()
    }
}

/// A relay that accepts each connection and closes it at once.
pub struct ClosingRelay {
    pub port: u16,
}

impl ClosingRelay {
    pub fn start() -> ClosingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                drop(stream);
            }
        });
        ClosingRelay { port }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.port)
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
