//! Subscription sockets: open, initialise, read.

use super::*;

/// A client WebSocket.
pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` with `protocol` and completes connection_init as a viewer.
pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    connect_at(&app.address, protocol).await
}

/// [`connect`] to the server at `address` (`http://host:port`).
pub async fn connect_at(address: &str, protocol: &str) -> Socket {
    let mut socket = open_socket_at(address, protocol).await;
    init_socket(&mut socket, Some(&token(Role::Viewer))).await;
    let ack = next_json(&mut socket, Duration::from_secs(2))
        .await
        .expect("connection_ack");
    assert_eq!(ack["type"], "connection_ack");
    socket
}

/// Opens `/graphql/ws` with `protocol`, before connection_init.
pub async fn open_socket(app: &TestApp, protocol: &str) -> Socket {
    open_socket_at(&app.address, protocol).await
}

/// [`open_socket`] at the server at `address` (`http://host:port`).
pub async fn open_socket_at(address: &str, protocol: &str) -> Socket {
    let url = format!("{}/graphql/ws", address.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// Sends connection_init with the token (if any) in its payload.
pub async fn init_socket(socket: &mut Socket, token: Option<&str>) {
    let payload = match token {
        Some(t) => json!({ "Authorization": format!("Bearer {t}") }),
        None => json!({}),
    };
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": payload }).to_string(),
        ))
        .await
        .unwrap();
}

/// The next JSON message other than keep-alives, within `within`.
pub async fn next_json(socket: &mut Socket, within: Duration) -> Option<Value> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] == "ka" {
                    continue;
                }
                return Some(value);
            }
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}
