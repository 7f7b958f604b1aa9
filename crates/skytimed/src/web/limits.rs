//! Bounds for the HTTP surfaces (status page and `/metrics`): at most
//! [`MAX_HTTP_CONNECTIONS`] at once (more are closed on accept), and a
//! connection that moves no byte for [`HTTP_IDLE_TIMEOUT`] is closed, so a
//! slow or stuck client cannot hold the box's sockets (hyper has no header
//! timeout without a timer, which `axum::serve` does not give it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// Most HTTP connections served at once, per listener.
pub const MAX_HTTP_CONNECTIONS: usize = 64;
/// A connection idle this long (no byte read or written) is closed.
pub const HTTP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A TCP listener with the bounds above, for `axum::serve`.
pub struct BoundedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
    refused: u64,
}

impl BoundedListener {
    /// Wraps `inner` with at most `max` connections, each closed after `idle` without traffic.
    pub fn new(inner: TcpListener, max: usize, idle: Duration) -> Self {
        Self {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            idle,
            refused: 0,
        }
    }
}

impl axum::serve::Listener for BoundedListener {
    type Io = BoundedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: back off, don't spin.
                    tracing::debug!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(permit) => {
                    return (
                        BoundedStream {
                            stream,
                            _permit: permit,
                            idle: self.idle,
                            deadline: Box::pin(tokio::time::sleep(self.idle)),
                        },
                        addr,
                    );
                }
                Err(_) => {
                    self.refused += 1;
                    if self.refused.is_power_of_two() {
                        tracing::warn!(
                            refused = self.refused,
                            "too many HTTP connections; closing new ones"
                        );
                    }
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One accepted connection, holding its slot until dropped.
pub struct BoundedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
}

impl BoundedStream {
    fn progressed(&mut self) {
        let next = Instant::now() + self.idle;
        self.deadline.as_mut().reset(next);
    }

    /// On `Pending`: an error once the idle deadline has passed.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "HTTP connection idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for BoundedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check_idle(cx),
        }
    }
}

impl AsyncWrite for BoundedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.stream).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.progressed();
                Poll::Ready(r)
            }
            Poll::Pending => this.check_idle(cx).map_ok(|()| 0),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn closes_idle_connections_and_refuses_beyond_the_cap() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let inner = TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let addr = inner.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let mut listener = BoundedListener::new(inner, 1, Duration::from_millis(300));
            let mut first = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (mut served, _) = listener.accept().await;
            first
                .write_all(b"x")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut byte = [0u8; 1];
            assert_eq!(served.read(&mut byte).await.unwrap_or(0), 1);

            // The slot is taken: a second connection is closed on accept, and
            // the third (after the first is gone) is served.
            let mut second = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let accept = tokio::spawn(async move { listener.accept().await });
            let mut buf = [0u8; 1];
            assert_eq!(
                second.read(&mut buf).await.unwrap_or(1),
                0,
                "over the cap: closed"
            );

            // Idle: nothing for 300 ms ends the read with TimedOut.
            let started = Instant::now();
            let err = served
                .read(&mut byte)
                .await
                .expect_err("idle connection kept open");
            assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
            assert!(
                started.elapsed() >= Duration::from_millis(250),
                "closed early"
            );
            drop(served);
            let _third = TcpStream::connect(addr)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (_stream, _) = accept.await.unwrap_or_else(|e| panic!("{e}"));
            drop(first);
        });
    }
}
