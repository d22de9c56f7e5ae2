//! What a connection runs over: plain TCP, or TLS over it, behind one trait so that the
//! connection loop is compiled once for each with no dispatch per read or write.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::connection::READ_CHUNK;

/// What a connection runs over: a plain TCP stream, or TLS over one. Reads and writes are
/// polled in place ([`Transport::poll_read_into`], [`Transport::poll_write_out`]), so that
/// waiting on them stores no future in the connection's task, which every idle connection
/// pays for.
///
/// The TLS side never waits on the socket's readiness directly: a TLS read first hands out the
/// plaintext rustls has already decrypted and only then asks the socket, so requests that
/// arrived in one record with an earlier batch are served without the descriptor ever
/// becoming readable again. (The connection threads' idle polling watches the runtime's
/// epoll descriptor, which only decides how a thread with no runnable task sleeps; a task
/// with buffered plaintext never waits, so it is not affected.)
pub trait Transport: AsyncRead + AsyncWrite + Unpin {
    /// Writes `buf` from `*written` on (advancing it) until all of it reached the socket.
    fn poll_write_out(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        written: &mut usize,
    ) -> std::task::Poll<std::io::Result<()>>;

    /// Reads what the client sent into `input`; an unallocated `input` gets a buffer from
    /// the thread's pool first (for plain TCP, only once the socket has data: an idle
    /// connection holds none).
    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        input: &mut BytesMut,
    ) -> std::task::Poll<std::io::Result<usize>>;
}

impl Transport for TcpStream {
    #[inline]
    fn poll_write_out(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        written: &mut usize,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Usually the socket takes the whole batch at once: one syscall.
        while let Some(rest) = buf.get(*written..).filter(|rest| !rest.is_empty()) {
            match self.try_write(rest) {
                Ok(0) => return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    std::task::ready!(self.poll_write_ready(cx))?;
                }
                Err(err) => return std::task::Poll::Ready(Err(err)),
            }
        }
        std::task::Poll::Ready(Ok(()))
    }

    #[inline]
    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        input: &mut BytesMut,
    ) -> std::task::Poll<std::io::Result<usize>> {
        loop {
            std::task::ready!(self.poll_read_ready(cx))?;
            let borrowed = input.capacity() == 0;
            if borrowed {
                *input = crate::buffers::take();
            } else if input.capacity() == input.len() {
                input.reserve(READ_CHUNK);
            }
            match self.try_read_buf(input) {
                // The readiness was stale (and is now cleared): wait again.
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    if borrowed {
                        crate::buffers::give_back(input);
                    }
                }
                read => return std::task::Poll::Ready(read),
            }
        }
    }
}

/// A borrowed transport: TLS serves a connection through one, to send its close
/// notification once `connection::handle` is done.
impl<T: Transport + ?Sized> Transport for &mut T {
    #[inline]
    fn poll_write_out(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        written: &mut usize,
    ) -> std::task::Poll<std::io::Result<()>> {
        (**self).poll_write_out(cx, buf, written)
    }

    #[inline]
    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        input: &mut BytesMut,
    ) -> std::task::Poll<std::io::Result<usize>> {
        (**self).poll_read_into(cx, input)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn poll_write_out(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
        written: &mut usize,
    ) -> std::task::Poll<std::io::Result<()>> {
        // rustls encrypts into its own buffer and writes what the socket takes; the flush
        // pushes out the rest of the records before the connection waits for a request.
        let mut stream = std::pin::Pin::new(self);
        while let Some(rest) = buf.get(*written..).filter(|rest| !rest.is_empty()) {
            match std::task::ready!(stream.as_mut().poll_write(cx, rest))? {
                0 => return std::task::Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        stream.poll_flush(cx)
    }

    fn poll_read_into(
        &mut self,
        cx: &mut std::task::Context<'_>,
        input: &mut BytesMut,
    ) -> std::task::Poll<std::io::Result<usize>> {
        // rustls may hold decrypted bytes already: the buffer is taken before the read.
        if input.capacity() == 0 {
            *input = crate::buffers::take();
        }
        tokio_util::io::poll_read_buf(std::pin::Pin::new(self), cx, input)
    }
}
