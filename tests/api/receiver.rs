//! A real local webhook receiver: a raw HTTP/1.1 server on 127.0.0.1:0 that records every
//! connection and every request exactly as it arrived (header lines in order, body bytes), and
//! answers as the test configures it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub request_line: String,
    /// Header lines in arrival order, as (lowercased name, value).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub struct Behavior {
    pub status: u16,
    pub extra_headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            status: 200,
            extra_headers: Vec::new(),
            body: "{\"received\":true}".into(),
            delay: Duration::ZERO,
        }
    }
}

/// Chooses the answer to the n-th request (0-based), for receivers that vary per request.
pub type Plan = Arc<dyn Fn(usize) -> Behavior + Send + Sync>;

#[derive(Clone)]
pub struct Receiver {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub behavior: Arc<Mutex<Behavior>>,
    pub plan: Arc<Mutex<Option<Plan>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            connections: Arc::default(),
            received: Arc::default(),
            behavior: Arc::default(),
            plan: Arc::default(),
        };
        let r = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                r.connections.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                std::thread::spawn(move || r.serve(stream));
            }
        });
        receiver
    }

    /// A webhook URL on this receiver with the given host spelling.
    pub fn url_with_host(&self, host: &str) -> String {
        format!("http://{host}:{}/hook/secret-path", self.port)
    }

    pub fn url(&self) -> String {
        self.url_with_host("127.0.0.1")
    }

    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap() = behavior;
    }

    pub fn set_plan(&self, plan: Plan) {
        *self.plan.lock().unwrap() = Some(plan);
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn serve(&self, stream: TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let index = {
            let mut received = self.received.lock().unwrap();
            received.push(Received {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body,
            });
            received.len() - 1
        };
        let plan = self.plan.lock().unwrap().clone();
        let behavior = match plan {
            Some(plan) => plan(index),
            None => self.behavior.lock().unwrap().clone(),
        };
        std::thread::sleep(behavior.delay);
        let mut response = format!(
            "HTTP/1.1 {} Test\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            behavior.status,
            behavior.body.len()
        );
        for (name, value) in &behavior.extra_headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&behavior.body);
        let mut stream = stream;
        let _ = stream.write_all(response.as_bytes());
        let _ = stream.flush();
    }
}
