use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpListener;

fn main() {
    smol::block_on(async {
        let listener = TcpListener::bind("0.0.0.0:8080").await.unwrap();
        println!("smol: listening on {}", listener.local_addr().unwrap());
        loop {
            let Ok((mut stream, _)) = listener.accept().await else { continue };
            smol::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                // One request per connection, kept alive as HTTP/1.1 clients expect.
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    request.extend_from_slice(&buf[..n]);
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        let body = "hello from smol\n";
                        let answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            })
            .detach();
        }
    });
}
