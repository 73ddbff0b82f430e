//! An HTTP/1.1 server written the way the tokio and hyper documentation writes one:
//! tokio's multi-threaded runtime, a `TcpListener`, one task per connection, hyper's
//! `service_fn`. Nothing in it knows about unikernels; on Unikraft, tokio's epoll,
//! eventfd and sockets are Unikraft's posix-poll, posix-eventfd and posix-socket, whose
//! AF_INET sockets are rt-unikraft's driver over the smoltcp stack.
//!
//! `GET /` answers `Hello from tokio and hyper on a unikernel!`; any other path 404.
//! Boot arguments: `--port=N` (default 80), `--exit-after-ms=N` (stop after N ms).
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

unikernel::main!(run);

/// The page `GET /` returns.
pub const PAGE: &str = "Hello from tokio and hyper on a unikernel!\n";

async fn hello(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    if req.uri().path() != "/" {
        *response.body_mut() = Full::new(Bytes::from_static(b"not found\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(response)
}

fn arg(name: &str) -> Option<u64> {
    std::env::args().skip(1).find_map(|a| {
        a.strip_prefix(name)
            .and_then(|v| v.strip_prefix('='))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
    })
}

async fn serve(port: u16) -> std::io::Result<()> {
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = TcpListener::bind(addr).await?;
    println!("tokio-http: listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            if let Err(e) = http1::Builder::new().serve_connection(io, service_fn(hello)).await {
                if !e.is_incomplete_message() {
                    eprintln!("tokio-http: connection: {e}");
                }
            }
        });
    }
}

fn run() -> std::io::Result<()> {
    let port = arg("--port").map_or(80, |p| u16::try_from(p).expect("--port: at most 65535"));
    let exit_after = arg("--exit-after-ms").map(Duration::from_millis);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match exit_after {
            Some(after) => match tokio::time::timeout(after, serve(port)).await {
                Ok(result) => result,
                Err(_) => {
                    println!("tokio-http: done");
                    Ok(())
                }
            },
            None => serve(port).await,
        }
    })
}
