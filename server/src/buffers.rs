//! Each connection thread's pool of I/O buffers, and of request decoders' argument storage.
//!
//! A connection borrows its read buffer when its socket has data and its reply buffer when
//! it has replies to write, and gives both back when it goes idle with nothing buffered. An
//! idle connection (most of them, with thousands connected) then holds no buffer at all,
//! and the few buffers in use are the same recently used, cache-warm ones. A borrow or a
//! return is a push or pop on a thread-local list; no lock, no allocation once warm.
//!
//! The decoder's argument storage ([`Scratch`]: the ranges of a request's arguments) goes
//! the same way: kept per connection it was 64 bytes for every client that ever sent a
//! command, and 16 KB for one whose last request had a thousand arguments.

use std::cell::RefCell;

use bytes::BytesMut;
use protocol::Scratch;

/// The size of a fresh buffer: a read takes up to this much at once.
pub const BUFFER_SIZE: usize = 16 * 1024;
/// A buffer that grew past this (for one big request or reply) is freed rather than kept.
const KEEP_AT_MOST: usize = 256 * 1024;
/// The most memory a thread's pool keeps.
const POOL_BYTES: usize = 1024 * 1024;

/// Decoder storage bigger than this (a request with hundreds of arguments) is freed rather
/// than kept.
const SCRATCH_KEEP_AT_MOST: usize = 4 * 1024;
/// The most decoder storages a thread's pool keeps (a thread decodes for one connection at a
/// time: a few are in use at once, the rest were given back by connections now idle).
const SCRATCH_POOL_COUNT: usize = 64;

/// Spare buffers and their total capacity.
struct Pool {
    spare: Vec<BytesMut>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            spare: Vec::new(),
            bytes: 0,
        })
    };
    static SCRATCH_POOL: RefCell<Vec<Scratch>> = const { RefCell::new(Vec::new()) };
}

/// Decoder argument storage: the last given back on this thread, or an empty one (which
/// allocates as the decoder needs).
pub fn take_scratch() -> Scratch {
    SCRATCH_POOL
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default()
}

/// Gives decoder argument storage back for the next [`take_scratch`] on this thread, unless
/// it holds nothing, grew too big, or the pool is full.
pub fn give_back_scratch(scratch: Scratch) {
    let bytes = scratch.capacity_bytes();
    if bytes == 0 || bytes > SCRATCH_KEEP_AT_MOST {
        return;
    }
    SCRATCH_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < SCRATCH_POOL_COUNT {
            pool.push(scratch);
        }
    });
}

/// An empty buffer with at least [`BUFFER_SIZE`] bytes of room: the last one given back on
/// this thread, or a new one.
pub fn take() -> BytesMut {
    let spare = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let buffer = pool.spare.pop()?;
        pool.bytes -= buffer.capacity();
        Some(buffer)
    });
    spare.unwrap_or_else(|| BytesMut::with_capacity(BUFFER_SIZE))
}

/// Gives `buffer` back (emptied) for the next [`take`] on this thread, unless it grew too big
/// or the pool is full; leaves an empty, unallocated buffer in its place.
pub fn give_back(buffer: &mut BytesMut) {
    if buffer.capacity() == 0 {
        return;
    }
    let mut buffer = std::mem::take(buffer);
    buffer.clear();
    // Reclaims the room ahead of the read position (no copy: the buffer is empty), or
    // reallocates if the bytes are still shared.
    buffer.reserve(BUFFER_SIZE);
    let capacity = buffer.capacity();
    if capacity > KEEP_AT_MOST {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.bytes + capacity <= POOL_BYTES {
            pool.bytes += capacity;
            pool.spare.push(buffer);
        }
    });
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty() {
        let mut buffer = take();
        buffer.extend_from_slice(b"request");
        let address = buffer.as_ptr();
        give_back(&mut buffer);
        assert_eq!(buffer.capacity(), 0, "the caller keeps no allocation");
        let again = take();
        assert!(again.is_empty());
        assert!(again.capacity() >= BUFFER_SIZE);
        assert_eq!(again.as_ptr(), address, "the same allocation is reused");
    }

    #[test]
    fn a_buffer_that_grew_too_big_is_freed() {
        let mut big = BytesMut::with_capacity(KEEP_AT_MOST * 2);
        big.extend_from_slice(b"x");
        give_back(&mut big);
        let fresh = take();
        assert!(fresh.capacity() < KEEP_AT_MOST);
    }

    #[test]
    fn the_pool_keeps_a_bounded_amount() {
        let mut taken: Vec<BytesMut> = (0..200).map(|_| take()).collect();
        for buffer in &mut taken {
            give_back(buffer);
        }
        let kept = POOL.with(|pool| pool.borrow().bytes);
        assert!(kept <= POOL_BYTES, "{kept}");
    }

    /// Decoder storage that held a request of `args` arguments.
    fn scratch_after(args: usize) -> Scratch {
        let mut codec = protocol::RequestCodec::default();
        let mut input = BytesMut::from(&b"*"[..]);
        input.extend_from_slice(format!("{args}\r\n").as_bytes());
        for _ in 0..args {
            input.extend_from_slice(b"$1\r\nx\r\n");
        }
        let request = codec
            .next_request(&mut input)
            .expect("valid")
            .expect("whole");
        assert_eq!(codec.argv(&request, &input).len(), args);
        codec.swap_scratch(Scratch::default())
    }

    #[test]
    fn decoder_storage_is_pooled_within_bounds() {
        let small = scratch_after(3);
        let bytes = small.capacity_bytes();
        assert!(bytes > 0);
        give_back_scratch(small);
        assert_eq!(
            take_scratch().capacity_bytes(),
            bytes,
            "the same storage again"
        );
        assert_eq!(
            take_scratch().capacity_bytes(),
            0,
            "an empty one when none is spare"
        );
        // Too big to keep (a request with a thousand arguments): freed.
        give_back_scratch(scratch_after(1000));
        assert_eq!(take_scratch().capacity_bytes(), 0);
        for _ in 0..SCRATCH_POOL_COUNT * 2 {
            give_back_scratch(scratch_after(2));
        }
        assert_eq!(
            SCRATCH_POOL.with(|pool| pool.borrow().len()),
            SCRATCH_POOL_COUNT
        );
    }
}
