//! A real HTTP server on loopback (tiny_http) that records every request and answers as the
//! test scripts it: a status and headers per request, in order, then `200 ok`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// The scripted answers: a status and extra headers each.
type Script = Arc<Mutex<VecDeque<(u16, Vec<(String, String)>)>>>;

pub struct Receiver {
    pub port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
    script: Script,
    server: Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        Receiver::on(0)
    }

    pub fn on(port: u16) -> Receiver {
        let server = Arc::new(tiny_http::Server::http(("127.0.0.1", port)).expect("bind the receiver"));
        let port = server.server_addr().to_ip().expect("an IP address").port();
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let script: Script = Arc::default();
        let (s, r, sc) = (server.clone(), requests.clone(), script.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let headers = req
                    .headers()
                    .iter()
                    .map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string()))
                    .collect();
                r.lock().unwrap().push(Request { path: req.url().to_string(), headers, body, at: Instant::now() });
                let (status, extra) = sc.lock().unwrap().pop_front().unwrap_or((200, Vec::new()));
                let mut resp =
                    tiny_http::Response::from_string(if status == 200 { "ok" } else { "no" }).with_status_code(status);
                for (k, v) in extra {
                    resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("header"));
                }
                let _ = req.respond(resp);
            }
        });
        Receiver { port, requests, script, server, thread: Some(thread) }
    }

    /// The next requests' answers, in order.
    pub fn answer(&self, status: u16, headers: &[(&str, &str)]) {
        self.script
            .lock()
            .unwrap()
            .push_back((status, headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
