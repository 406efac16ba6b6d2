//! Pre-shared-key authentication, server and client in one program: the server
//! knows two keys, the client proves one of them, and the server's application
//! learns which key id connected. A client with a wrong key is refused.
//!
//! ```text
//! cargo run -p weft-tokio --example psk
//! ```

use std::sync::Arc;
use weft_tokio::{Config, ErrorCode, Handle, PskAuthenticator, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server's keys: id -> 32-byte secret (load them from a secret store).
    let mut keys = PskAuthenticator::new();
    keys.add_key(b"sensor-17", &[7; 32])?;
    keys.add_key(b"dashboard", &[9; 32])?;
    let server_config = Config {
        auth: Some(Arc::new(keys)),
        ..Config::default()
    };
    let server = Server::bind("127.0.0.1:0", server_config).await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.serve(|h: Handle| async move {
        // The key id is known once the handshake is done.
        if h.connected().await.is_err() {
            return;
        }
        let who = h.peer_key_id().unwrap_or_default();
        let who = String::from_utf8_lossy(&who).into_owned();
        h.serve(move |_, _| Ok(format!("you are {who}").into_bytes()))
            .await;
    }));

    // A client holding one key.
    let client_config = Config {
        auth: Some(Arc::new(PskAuthenticator::with_client_key(
            b"sensor-17",
            &[7; 32],
        )?)),
        ..Config::default()
    };
    let h = weft_tokio::connect(addr, client_config).await?;
    let me = h.request(b"whoami", b"", None).await?.into_result()?;
    println!("authenticated: {}", String::from_utf8_lossy(&me));
    h.shutdown().await?;

    // A client with the wrong secret: the handshake fails with AUTH_FAILED.
    let wrong = Config {
        auth: Some(Arc::new(PskAuthenticator::with_client_key(
            b"sensor-17",
            &[1; 32],
        )?)),
        ..Config::default()
    };
    let h = weft_tokio::connect(addr, wrong).await?;
    match h.connected().await {
        Err(close) if close.code == ErrorCode::AUTH_FAILED => {
            println!("wrong key refused: {close}")
        }
        other => return Err(format!("the wrong key was not refused: {other:?}").into()),
    }
    Ok(())
}
