//! A deliberately lean GraphQL subscriber for benchmarks, so that the load
//! generator takes as little of the shared CPU as it can: a plain WebSocket
//! handshake, two client frames, then it only scans what arrives for `next`
//! messages.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Opens `/graphql/ws` at `addr`, subscribes with `query` and calls `on_events`
/// with the number of `next` messages in each read. `acked` counts subscribers
/// whose connection was acknowledged. Returns when the connection ends.
pub async fn subscribe(
    addr: SocketAddr,
    id: usize,
    query: String,
    acked: Arc<AtomicU64>,
    mut on_events: impl FnMut(usize),
) {
    let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let handshake = format!(
        "GET /graphql/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
    );
    let subscribe =
        json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": query } });
    let mut frames = client_frame(json!({ "type": "connection_init" }).to_string().as_bytes());
    frames.extend(client_frame(subscribe.to_string().as_bytes()));
    if socket.write_all(handshake.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 4096];
    let mut header = Vec::new();
    // The 101 answer ends with an empty line; frames follow.
    while !header.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => header.extend_from_slice(&buf[..k]),
        }
    }
    if socket.write_all(&frames).await.is_err() {
        return;
    }
    loop {
        let k = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(k) => k,
        };
        let chunk = &buf[..k];
        if contains(chunk, b"connection_ack") {
            acked.fetch_add(1, Ordering::Relaxed);
        }
        let events = chunk.windows(6).filter(|w| w == b"\"next\"").count();
        if events > 0 {
            on_events(events);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A masked text frame as a client must send it (the mask key is zero, which
/// leaves the payload as it is).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}
