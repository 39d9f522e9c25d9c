//! Whether a connection is one server session, told by behaviour rather than by the URL: at
//! login PostgreSQL announces its backend's pid (BackendKeyData, the key a cancel request
//! quotes), and a pooler announces a key of its own, since behind it no one backend is ours.
//! So a statement that finds `pg_backend_pid()` equal to the announced pid runs on the
//! session we logged in to: a direct connection, or a proxy that passes bytes through.
//! Behind a pooler, in either pool mode, the two differ. Only ever a hint for `MIGRATE_LOCK=auto`
//! (whether the session lock can be trusted as well): every step is guarded in its own
//! transaction whatever this says.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};
use tokio_postgres::Client;

/// The pid announced at login, or `None` when it cannot be read back.
///
/// tokio-postgres keeps it only inside the client's cancel token, so the token is asked to
/// write its cancel request into an in-memory pipe, and the pid is read from those bytes
/// (length 16, code 80877102, pid, secret). Nothing is sent to the server.
pub async fn announced_pid(client: &Client) -> Option<i32> {
    let token = client.cancel_token();
    let (ours, mut theirs) = tokio::io::duplex(64);
    let write = token.cancel_query_raw(ours, PassThrough);
    let (_, pid) = tokio::join!(write, read_cancel_request(&mut theirs));
    pid
}

/// The pid in the cancel request written to `pipe`, answering an SSLRequest first (sslmode
/// prefer or require) with yes: the "TLS" is [`PassThrough`].
async fn read_cancel_request(pipe: &mut DuplexStream) -> Option<i32> {
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    const CANCEL_REQUEST: [u8; 8] = [0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e];
    let mut head = [0u8; 8];
    pipe.read_exact(&mut head).await.ok()?;
    if head == SSL_REQUEST {
        pipe.write_all(b"S").await.ok()?;
        pipe.read_exact(&mut head).await.ok()?;
    }
    if head != CANCEL_REQUEST {
        return None;
    }
    let mut pid = [0u8; 4];
    pipe.read_exact(&mut pid).await.ok()?;
    Some(i32::from_be_bytes(pid))
}

/// A "TLS" that passes bytes through unchanged, so that the cancel request of a connection
/// made with TLS is still written to the pipe in the clear.
struct PassThrough;

impl TlsConnect<DuplexStream> for PassThrough {
    type Stream = Clear;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<Clear>>;

    fn connect(self, stream: DuplexStream) -> Self::Future {
        std::future::ready(Ok(Clear(stream)))
    }
}

/// The pipe, as [`PassThrough`]'s stream.
struct Clear(DuplexStream);

impl TlsStream for Clear {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for Clear {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Clear {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::read_cancel_request;
    use tokio::io::AsyncWriteExt;

    async fn read(bytes: &[u8]) -> Option<i32> {
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        ours.write_all(bytes).await.unwrap();
        read_cancel_request(&mut theirs).await
    }

    #[tokio::test]
    async fn reads_the_pid_with_and_without_an_ssl_request_first() {
        let cancel = [0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 48, 57, 1, 2, 3, 4];
        assert_eq!(read(&cancel).await, Some(12345));
        let mut both = vec![0, 0, 0, 8, 4, 210, 22, 47];
        both.extend_from_slice(&cancel);
        assert_eq!(read(&both).await, Some(12345));
        assert_eq!(read(&[0, 0, 0, 8, 4, 210, 22, 48, 0, 0, 0, 0]).await, None);
    }
}
