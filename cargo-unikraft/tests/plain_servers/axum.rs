use axum::{routing::get, Router};

#[tokio::main]
async fn main() {
    let app = Router::new().route("/", get(|| async { "hello from axum\n" }));
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await.unwrap();
    println!("axum: listening on {}", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
