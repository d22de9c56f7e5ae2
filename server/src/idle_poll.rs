//! Polling before sleeping: a connection thread that runs out of work watches its own
//! sockets for a few tens of microseconds before it blocks in the kernel.
//!
//! Why: under load a connection thread finishes each batch quickly and goes to sleep in
//! `epoll_wait` thousands of times a second. Each time, the client's next write has to wake
//! it, and the wake-up (scheduler work and, on a virtual machine, an inter-processor interrupt
//! that exits to the hypervisor) is paid by the *client's* core. Measured with
//! `redis-benchmark -P 16` pinned to its own core: 11,000 sleeps per 2M requests made the
//! client spend 17% more CPU per request than against Redis, whose single thread is busy
//! enough never to sleep, so the client became the bottleneck. Polling briefly before
//! sleeping catches the next request without a wake-up.
//!
//! The poll window adapts the way Linux's guest halt-polling (`haltpoll`) does: it grows
//! when work arrived shortly after polling gave up and shrinks when the thread then slept
//! long, down to not polling at all, so an idle or lightly loaded server burns nothing.
//! Only this thread's sockets are watched: a wake-up from another thread (a new connection,
//! a `PUBLISH` delivery, an fsync completing) is seen when the window ends, at most
//! `--idle-poll-us` later.
//!
//! Each connection thread owns one level-triggered epoll set holding its connections'
//! sockets, separate from tokio's (whose descriptor is not exposed): "is any socket
//! readable" is then one non-blocking `epoll_wait`. A socket leaves the set when it is
//! closed. A socket that stays readable because its task is not reading (a client blocked
//! on output) only makes the poll end at once, as if polling were off.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// The window a thread starts from, and returns to after it had shrunk to nothing.
const START_WINDOW: Duration = Duration::from_micros(10);

thread_local! {
    static POLLER: RefCell<Option<IdlePoller>> = const { RefCell::new(None) };
}

/// Sets up polling for the current thread with windows up to `max` (zero: never poll).
/// Called once by each connection thread before it runs its event loop.
pub fn install(max: Duration) {
    if max.is_zero() {
        return;
    }
    match sys::Epoll::new() {
        Ok(epoll) => POLLER.with(|poller| {
            *poller.borrow_mut() = Some(IdlePoller::new(epoll, max));
        }),
        Err(err) => tracing::warn!("idle polling off, no epoll set: {err}"),
    }
}

/// Adds a connection's socket to the current thread's watch set (no-op when polling is
/// off). The socket leaves the set by itself when it is closed.
pub fn watch(socket: &impl std::os::fd::AsRawFd) {
    POLLER.with(|poller| {
        if let Some(poller) = poller.borrow().as_ref() {
            if let Err(err) = poller.epoll.add(socket.as_raw_fd()) {
                tracing::debug!("socket not watched for idle polling: {err}");
            }
        }
    });
}

/// The runtime's park hook: polls this thread's sockets for up to the current window.
pub fn before_park() {
    POLLER.with(|poller| {
        if let Some(poller) = poller.borrow_mut().as_mut() {
            poller.before_park();
        }
    });
}

/// The runtime's unpark hook: adapts the window to how long the thread slept.
pub fn after_unpark() {
    POLLER.with(|poller| {
        if let Some(poller) = poller.borrow_mut().as_mut() {
            poller.after_unpark(Instant::now());
        }
    });
}

/// One thread's watch set and adaptive window.
struct IdlePoller {
    epoll: sys::Epoll,
    window: Window,
    /// When polling gave up and the thread went to sleep (None: polling found work).
    slept_at: Option<Instant>,
}

impl IdlePoller {
    fn new(epoll: sys::Epoll, max: Duration) -> Self {
        IdlePoller {
            epoll,
            window: Window::new(max),
            slept_at: None,
        }
    }

    fn before_park(&mut self) {
        let window = self.window.current;
        let started = Instant::now();
        if !window.is_zero() {
            loop {
                if self.epoll.any_ready() {
                    self.slept_at = None;
                    return;
                }
                std::hint::spin_loop();
                if started.elapsed() >= window {
                    break;
                }
            }
        }
        self.slept_at = Some(Instant::now());
    }

    fn after_unpark(&mut self, now: Instant) {
        if let Some(slept_at) = self.slept_at.take() {
            self.window
                .after_sleep(now.saturating_duration_since(slept_at));
        }
    }
}

/// The adaptive poll window: pure arithmetic, kept apart so it can be tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    current: Duration,
    max: Duration,
}

impl Window {
    fn new(max: Duration) -> Self {
        Window {
            current: START_WINDOW.min(max),
            max,
        }
    }

    /// Polling gave up and the thread then slept for `slept`. A short sleep means work came
    /// soon after: a longer window would have caught it. A long sleep means the thread is
    /// lightly loaded: polling only burnt CPU.
    fn after_sleep(&mut self, slept: Duration) {
        if slept <= self.max {
            self.current = if self.current.is_zero() {
                START_WINDOW.min(self.max)
            } else {
                (self.current * 2).min(self.max)
            };
        } else {
            self.current /= 2;
            if self.current < START_WINDOW / 2 {
                self.current = Duration::ZERO;
            }
        }
    }
}

#[cfg(target_os = "linux")]
mod sys {
    //! The three epoll calls, for the watch set.

    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

    /// A level-triggered epoll set.
    pub struct Epoll(OwnedFd);

    impl Epoll {
        pub fn new() -> io::Result<Epoll> {
            // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
            #[allow(unsafe_code)]
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by epoll_create1 and nothing else owns it.
            #[allow(unsafe_code)]
            Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// Watches `fd` for input (level-triggered: ready while unread data is queued).
        pub fn add(&self, fd: RawFd) -> io::Result<()> {
            let mut event = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
                u64: 0,
            };
            // SAFETY: both descriptors are open (the caller holds the socket) and `event`
            // is a valid epoll_event the kernel only reads.
            #[allow(unsafe_code)]
            let result =
                unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
            if result < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Whether any watched socket is readable now, without blocking. An error counts as
        /// ready, so the thread goes to sleep in tokio's own poll rather than spinning.
        pub fn any_ready(&self) -> bool {
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: the set is open and `event` has room for the one event asked for.
            #[allow(unsafe_code)]
            let ready = unsafe { libc::epoll_wait(self.0.as_raw_fd(), &mut event, 1, 0) };
            ready != 0
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! No epoll: polling never starts.

    use std::io;
    use std::os::fd::RawFd;

    pub struct Epoll;

    impl Epoll {
        pub fn new() -> io::Result<Epoll> {
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "epoll is Linux-only",
            ))
        }

        pub fn add(&self, _fd: RawFd) -> io::Result<()> {
            Ok(())
        }

        pub fn any_ready(&self) -> bool {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(50);

    #[test]
    fn window_grows_while_work_follows_soon_after_giving_up() {
        let mut window = Window::new(MAX);
        assert_eq!(window.current, START_WINDOW);
        window.after_sleep(Duration::from_micros(30));
        assert_eq!(window.current, Duration::from_micros(20));
        window.after_sleep(Duration::from_micros(30));
        window.after_sleep(Duration::from_micros(30));
        assert_eq!(window.current, MAX, "capped at the maximum");
    }

    #[test]
    fn window_shrinks_to_nothing_when_idle_and_restarts_under_load() {
        let mut window = Window::new(MAX);
        for _ in 0..10 {
            window.after_sleep(Duration::from_millis(100));
        }
        assert_eq!(
            window.current,
            Duration::ZERO,
            "an idle thread stops polling"
        );
        window.after_sleep(Duration::from_micros(5));
        assert_eq!(
            window.current, START_WINDOW,
            "a short sleep turns polling back on"
        );
    }

    #[test]
    fn window_never_exceeds_a_small_maximum() {
        let max = Duration::from_micros(4);
        let mut window = Window::new(max);
        assert_eq!(window.current, max);
        window.after_sleep(Duration::from_micros(1));
        assert_eq!(window.current, max);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn watch_set_reports_a_readable_socket_and_forgets_a_closed_one() -> std::io::Result<()> {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        let epoll = sys::Epoll::new()?;
        epoll.add(std::os::fd::AsRawFd::as_raw_fd(&server))?;
        assert!(!epoll.any_ready(), "nothing sent yet");
        client.write_all(b"PING\r\n")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !epoll.any_ready() {
            assert!(Instant::now() < deadline, "data never reported");
        }
        drop(server);
        assert!(!epoll.any_ready(), "a closed socket leaves the set");
        Ok(())
    }
}
