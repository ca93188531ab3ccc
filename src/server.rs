//! Serving an axum router on a local port with graceful shutdown: the
//! [`RunningServer`] handle shared by the sandbox vendors and the listener.

use axum::Router;
use std::net::SocketAddr;

/// An HTTP server running on a local port; dropping it asks it to stop.
#[derive(Debug)]
pub struct RunningServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.handle).await;
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl RunningServer {
    /// A server running as `handle` on `addr`, stopped by sending on `shutdown`.
    pub fn from_task(
        addr: SocketAddr,
        shutdown: tokio::sync::oneshot::Sender<()>,
        handle: tokio::task::JoinHandle<()>,
    ) -> RunningServer {
        RunningServer {
            url: format!("http://{addr}"),
            addr,
            shutdown: Some(shutdown),
            handle,
        }
    }
}

/// Serves `router` on `addr` (use port 0 for an ephemeral port).
pub async fn spawn(router: Router, addr: SocketAddr) -> std::io::Result<RunningServer> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningServer::from_task(addr, tx, handle))
}
