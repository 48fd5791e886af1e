//! `GET /metrics` over HTTP (tiny_http, one thread): the registry in the
//! Prometheus text format (0.0.4), or in OpenMetrics when the scraper asks
//! for it (`Accept: application/openmetrics-text`, as Prometheus does).
//! `GET /` answers a line that points to `/metrics`; anything else is a 404.

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;
use residual_tensor::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The OpenMetrics content type Prometheus asks for first.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A running metrics endpoint; dropping it stops the server.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

/// The registry encoded for a scraper that sent `accept`: `(body, content type)`.
pub fn encode(registry: &Registry, accept: Option<&str>) -> (String, &'static str) {
    let mut body = String::new();
    let openmetrics = accept.is_some_and(|a| a.contains("application/openmetrics-text"));
    // Encoding into a String cannot fail.
    if openmetrics {
        let _ = text::encode(&mut body, registry);
        (body, OPENMETRICS)
    } else {
        let _ = prometheus_text::encode(&mut body, registry);
        (body, prometheus_text::CONTENT_TYPE)
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    // Both are ASCII constants of this file: the header always parses.
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

fn respond(registry: &Registry, req: tiny_http::Request) {
    let path = req.url().split('?').next().unwrap_or("");
    let is_get = matches!(
        req.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let response = match (is_get, path) {
        (true, "/metrics") => {
            let accept = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_string());
            let (body, content_type) = encode(registry, accept.as_deref());
            tiny_http::Response::from_string(body).with_header(header("Content-Type", content_type))
        }
        (true, "/") => {
            tiny_http::Response::from_string("residual train: Prometheus metrics at /metrics\n")
                .with_header(header("Content-Type", "text/plain; charset=utf-8"))
        }
        (false, _) => {
            tiny_http::Response::from_string("only GET is served\n").with_status_code(405)
        }
        (true, _) => tiny_http::Response::from_string("not found: the metrics are at /metrics\n")
            .with_status_code(404),
    };
    // A scraper that hung up mid-answer is its own problem, not the run's.
    let _ = req.respond(response);
}

impl MetricsServer {
    /// Serves `registry` on `addr` (`HOST:PORT`; port 0 picks a free port,
    /// [`MetricsServer::addr`] says which). An address that cannot be bound
    /// is an error naming it and why.
    pub fn start(addr: &str, registry: Registry) -> Result<Self, Error> {
        let fail = |why: String| {
            Error::arg(
                "--metrics-addr",
                format!("cannot serve metrics on {addr:?}: {why}"),
            )
        };
        let unparsed = |why: String| {
            fail(format!(
                "{why} (expected HOST:PORT, e.g. 127.0.0.1:9464; port 0 picks a free port)"
            ))
        };
        let sock: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .map_err(|e| unparsed(e.to_string()))?
            .next()
            .ok_or_else(|| unparsed("it names no address".into()))?;
        let server = tiny_http::Server::http(sock)
            .map_err(|e| fail(format!("cannot listen on {sock}: {e}")))?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| fail("not an IP address".into()))?;
        let server = Arc::new(server);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for req in serving.incoming_requests() {
                    respond(&registry, req);
                }
            })
            .map_err(|e| fail(format!("cannot start its thread: {e}")))?;
        Ok(MetricsServer {
            server,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
