//! The HTTP connections: the accept loop, the per-connection timeouts, and a stop that
//! lets requests in flight finish but never waits past its deadline (CONTRACT §9).
//!
//! - A request's headers must arrive within `header_read` (hyper's header-read timeout;
//!   it also closes a kept-alive connection that sends nothing for that long).
//! - A response that the client takes nothing of for `write_stall` is abandoned and its
//!   connection closed: every write to the socket that cannot progress arms a timer,
//!   every byte taken disarms it ([`StallGuard`]).
//! - On stop the listener is closed at once, idle connections are closed, requests in
//!   flight may finish within `drain`; connections still open then are dropped.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration as StdDuration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

/// The HTTP server's time limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a request's headers may take to arrive.
    pub header_read: StdDuration,
    /// How long a response may wait for the client to take any of it.
    pub write_stall: StdDuration,
    /// How long a stop lets requests in flight finish.
    pub drain: StdDuration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read: StdDuration::from_secs(10),
            write_stall: StdDuration::from_secs(30),
            drain: StdDuration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then drains as the module
/// says.
///
/// # Errors
/// None today: a failed accept is logged and retried; kept as `io::Result` for the caller.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> io::Result<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, router.clone(), limits, stop.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little, as hyper's
                    // own servers do, rather than spin.
                    tracing::warn!(error.message = %error, "accepting a connection failed");
                    tokio::time::sleep(StdDuration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!("stopping: no new connections, finishing requests in flight");
    let drained = tokio::time::timeout(limits.drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "dropping the connections still open at the stop deadline"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// One HTTP/1 connection, closed gracefully once `stop` is cancelled.
async fn connection(
    stream: TcpStream,
    router: axum::Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    // Small responses go out at once.
    drop(stream.set_nodelay(true));
    let io = TokioIo::new(StallGuard::new(stream, limits.write_stall));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let served = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(served);
    let outcome = tokio::select! {
        outcome = served.as_mut() => outcome,
        () = stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = outcome {
        tracing::debug!(error.message = %error, "connection ended with an error");
    }
}

/// A socket whose writes fail with `TimedOut` once they have made no progress for
/// `limit`: a client that stops reading cannot hold its connection (and the response
/// being produced for it) for longer than that.
#[derive(Debug)]
pub struct StallGuard<T> {
    inner: T,
    limit: StdDuration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    /// Guards `inner`.
    pub fn new(inner: T, limit: StdDuration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Called when a write could not progress: arms the timer if it is not armed, and
    /// fails once it has run out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing of the response in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Called with the outcome of a write: bytes taken disarm the timer; a write that
    /// cannot progress arms it.
    fn written(
        &mut self,
        outcome: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match outcome {
            Poll::Pending => self.pending(cx),
            Poll::Ready(Ok(written)) if written > 0 => {
                self.stalled = None;
                Poll::Ready(Ok(written))
            }
            ready => ready,
        }
    }

    /// Called with the outcome of a flush or shutdown: one that cannot progress arms
    /// the timer; one that completes proves nothing about the client (a socket's flush
    /// always completes) and leaves it as it is.
    fn flushed(
        &mut self,
        outcome: Poll<io::Result<()>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        match outcome {
            Poll::Pending => self.pending(cx),
            ready => ready,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.written(outcome, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.written(outcome, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_flush(cx);
        this.flushed(outcome, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let outcome = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.flushed(outcome, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt as _;

    #[tokio::test(start_paused = true)]
    async fn a_write_that_makes_no_progress_fails_after_the_limit() {
        // A pipe of 64 bytes that nobody reads.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, StdDuration::from_secs(30));

        let written = guarded.write_all(&[0_u8; 1024]).await;

        let error = written.expect_err("the write gives up");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn flushing_between_stalled_writes_does_not_restart_the_clock() {
        let (writer, _reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, StdDuration::from_secs(30));
        guarded.write_all(&[0_u8; 64]).await.expect("fits the pipe");
        let started = tokio::time::Instant::now();

        let stalled = async {
            for _ in 0..60 {
                let step =
                    tokio::time::timeout(StdDuration::from_secs(1), guarded.write(&[0_u8; 8]))
                        .await;
                match step {
                    Ok(result) => return result,
                    Err(_) => guarded.flush().await.expect("a pipe flushes at once"),
                }
            }
            Ok(0)
        }
        .await;

        assert!(stalled.is_err());
        assert!(started.elapsed() >= StdDuration::from_secs(30));
        assert!(started.elapsed() < StdDuration::from_secs(35));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut guarded = StallGuard::new(writer, StdDuration::from_secs(30));
        let reading = tokio::spawn(async move {
            let mut total = 0;
            let mut chunk = [0_u8; 64];
            while total < 1024 {
                tokio::time::sleep(StdDuration::from_secs(20)).await;
                total += tokio::io::AsyncReadExt::read(&mut reader, &mut chunk)
                    .await
                    .expect("reads");
            }
            total
        });

        let written = guarded.write_all(&[0_u8; 1024]).await;

        assert!(written.is_ok(), "{written:?}");
        assert_eq!(reading.await.expect("the reader ends"), 1024);
    }
}
