//! RESP2/RESP3 support for kvstore: the [`Frame`] type, incremental parsers, encoders and
//! the tokio-util codecs built on them.
//!
//! The core is pure: [`parse::parse`] and the incremental [`parse::FrameParser`] /
//! [`parse::RequestParser`] work on `&[u8]`; the [`encode`](mod@encode) writers append to a
//! `BytesMut`. [`codec`] adapts them to `tokio_util::codec` in a few lines each:
//! [`RequestCodec`] for servers (decodes requests, encodes replies) and [`RespCodec`] for
//! clients (decodes any frame, encodes commands).
//!
//! [`catalogue`] describes every command as data (arity, flags, key specs, docs, how writes
//! propagate): what `COMMAND INFO` / `COMMAND DOCS` send, and what kvcli reads offline.
//!
//! Errors come in two kinds, as in Redis: a [`ProtocolError`] means the stream is unusable
//! (reply with [`ProtocolError::reply_line`], then close); command errors are ordinary
//! [`Frame::Error`] replies and are the server's business.
//!
//! ```
//! use bytes::BytesMut;
//! use protocol::{Frame, RequestCodec, Version};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = RequestCodec::default();
//! let mut input = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\nPING\r\n"[..]);
//! assert_eq!(codec.decode(&mut input)?.unwrap_or_default(), [&b"GET"[..], b"key"]);
//! assert_eq!(codec.decode(&mut input)?.unwrap_or_default(), [&b"PING"[..]]);
//! assert_eq!(codec.decode(&mut input)?, None);
//!
//! codec.set_version(Version::Resp3);
//! let mut output = BytesMut::new();
//! codec.encode(&Frame::Boolean(true), &mut output)?;
//! assert_eq!(&output[..], b"#t\r\n");
//! # Ok::<(), protocol::ProtocolError>(())
//! ```
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod argv;
pub mod catalogue;
pub mod codec;
pub mod encode;
pub mod error;
pub mod frame;
pub mod inline;
pub mod parse;

pub use argv::{Argv, OwnedArgv};
pub use codec::{RequestCodec, RespCodec};
pub use encode::IntText;
pub use error::ProtocolError;
pub use frame::{Frame, Version};
pub use parse::{Limits, Scratch};
