fn main() {
    let server = tiny_http::Server::http("0.0.0.0:8080").unwrap();
    println!("tiny_http: listening on 0.0.0.0:8080");
    let server = std::sync::Arc::new(server);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let _ = request.respond(tiny_http::Response::from_string("hello from tiny_http\n"));
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
