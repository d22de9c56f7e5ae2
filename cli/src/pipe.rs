//! `--pipe`: mass insertion, as redis-cli's pipe mode does it.
//!
//! Standard input (RESP requests or inline command lines, any mix) goes to the server as
//! is, as fast as the socket takes it, from a writer thread; meanwhile the main thread
//! decodes the replies as they stream back ([`RespCodec`]), counting them and printing the
//! errors, so neither side waits for the other and no reply is kept. At the end of the
//! input the writer sends `ECHO <20 random bytes>`: when that comes back, every reply has
//! been read. Then `errors: E, replies: R` (exit status 1 if E > 0).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use protocol::encode::encode_command;
use protocol::{Frame, RespCodec};
use tokio_util::codec::Decoder;

use crate::connection::{describe_io_error, ConnectionError};

/// Bytes of input sent, and of replies read, per system call.
const CHUNK: usize = 64 * 1024;

/// How often the reader wakes up to check `--pipe-timeout` while no reply arrives.
const POLL: Duration = Duration::from_millis(250);

/// What the run amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeSummary {
    /// Error replies.
    pub errors: u64,
    /// All replies (errors included).
    pub replies: u64,
}

/// Sends `input` over `stream` and reads the replies, printing progress to standard output
/// and error replies to standard error. `timeout`: give up when no reply arrives for that
/// long after the input is exhausted.
///
/// # Errors
///
/// Errors writing to standard output or error.
pub fn run<R: Read + Send + 'static>(
    stream: TcpStream,
    input: R,
    timeout: Option<Duration>,
) -> io::Result<ExitCode> {
    let mut err = BufWriter::new(io::stderr().lock());
    let writer_stream = match stream.try_clone() {
        Ok(clone) => clone,
        Err(error) => {
            writeln!(err, "Error: {}", describe_io_error(&error))?;
            return Ok(ExitCode::FAILURE);
        }
    };
    let magic = magic();
    let input_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let input_done = Arc::clone(&input_done);
        thread::spawn(move || send_input(input, writer_stream, magic, &input_done))
    };

    let (summary, mut ok) = match read_replies(&stream, &magic, &input_done, timeout, &mut err) {
        Ok((summary, completed)) => (summary, completed),
        Err((summary, error)) => {
            writeln!(err, "Error reading replies from the server: {error}")?;
            (summary, false)
        }
    };
    // The writer is done once the final ECHO was answered, or if it failed (which is why
    // the replies stopped). Otherwise it may still be blocked reading the input: it is not
    // waited for, the process is about to exit.
    if writer.is_finished() {
        if let Ok(Err(error)) = writer.join() {
            writeln!(err, "{error}")?;
            ok = false;
        }
    }
    err.flush()?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "errors: {}, replies: {}",
        summary.errors, summary.replies
    )?;
    out.flush()?;
    Ok(if ok && summary.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The writer thread: copies `input` to the server, then the final `ECHO magic`. On
/// failure it shuts its side of the connection, so that the reader stops too.
fn send_input<R: Read>(
    input: R,
    stream: TcpStream,
    magic: [u8; 20],
    input_done: &AtomicBool,
) -> Result<(), String> {
    let result = copy_input(input, &stream, magic, input_done);
    if result.is_err() {
        let _ = stream.shutdown(Shutdown::Write);
    }
    result
}

fn copy_input<R: Read>(
    mut input: R,
    mut stream: &TcpStream,
    magic: [u8; 20],
    input_done: &AtomicBool,
) -> Result<(), String> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => {
                return Err(format!(
                    "Error reading from stdin: {}",
                    describe_io_error(&error)
                ))
            }
        };
        stream
            .write_all(&buf[..n])
            .map_err(|e| format!("Error writing to the server: {}", describe_io_error(&e)))?;
    }
    // Printed before the ECHO is sent, so that it always comes before the last reply.
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "All data transferred. Waiting for the last reply...");
        let _ = out.flush();
    }
    // The leading CRLF ends an unterminated last inline line; alone, it is an empty request.
    let mut echo = BytesMut::from(&b"\r\n"[..]);
    encode_command(&[b"ECHO", &magic], &mut echo);
    stream
        .write_all(&echo)
        .map_err(|e| format!("Error writing to the server: {}", describe_io_error(&e)))?;
    input_done.store(true, Ordering::Release);
    Ok(())
}

/// Reads replies until the final ECHO comes back (`completed`), or the timeout expires.
fn read_replies(
    stream: &TcpStream,
    magic: &[u8; 20],
    input_done: &AtomicBool,
    timeout: Option<Duration>,
    err: &mut dyn Write,
) -> Result<(PipeSummary, bool), (PipeSummary, ConnectionError)> {
    let mut summary = PipeSummary {
        errors: 0,
        replies: 0,
    };
    let mut reader = stream;
    if let Err(error) = reader.set_read_timeout(Some(POLL)) {
        return Err((summary, error.into()));
    }
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::with_capacity(CHUNK);
    let mut chunk = vec![0u8; CHUNK];
    let mut last_reply = Instant::now();
    loop {
        loop {
            let frame = match codec.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(error) => return Err((summary, error.into())),
            };
            last_reply = Instant::now();
            match frame {
                Frame::Error(message) => {
                    summary.errors += 1;
                    // Losing error text is better than stopping the transfer for it.
                    let _ = err.write_all(&message);
                    let _ = err.write_all(b"\n");
                }
                Frame::Bulk(data) if data.as_ref() == magic.as_slice() => {
                    let mut out = io::stdout().lock();
                    let _ = writeln!(out, "Last reply received from server.");
                    let _ = out.flush();
                    return Ok((summary, true));
                }
                _ => {}
            }
            summary.replies += 1;
        }
        match reader.read(&mut chunk) {
            Ok(0) => return Err((summary, ConnectionError::Closed)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                if let Some(timeout) = timeout {
                    if input_done.load(Ordering::Acquire) && last_reply.elapsed() > timeout {
                        summary.errors += 1;
                        let _ = writeln!(
                            err,
                            "No replies for {} seconds: exiting.",
                            timeout.as_secs()
                        );
                        return Ok((summary, false));
                    }
                }
            }
            Err(error) => return Err((summary, error.into())),
        }
    }
}

/// 20 unpredictable bytes: no input can contain an `ECHO` of them by accident.
fn magic() -> [u8; 20] {
    // `RandomState` is seeded from the operating system's randomness.
    let state = RandomState::new();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut out = [0u8; 20];
    for (i, part) in out.chunks_mut(8).enumerate() {
        let mut hasher = state.build_hasher();
        hasher.write_usize(i);
        hasher.write_u128(now);
        let bytes = hasher.finish().to_le_bytes();
        part.copy_from_slice(&bytes[..part.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_differs_between_runs() {
        assert_ne!(magic(), magic());
    }
}
