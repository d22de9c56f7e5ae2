//! Polling before sleeping: a connection thread that runs out of work keeps checking for
//! new work for a few tens of microseconds before it blocks in the kernel.
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
//! What is polled is the runtime's own epoll descriptor, with `poll(2)`: it is readable when
//! the runtime has events waiting (a socket ready, or a wake-up from another thread through
//! the runtime's waker), and asking does not consume them. Tokio does not expose that
//! descriptor; it is the epoll descriptor that building the runtime creates, so
//! [`runtime_epoll`] finds it by comparing the process's descriptors before and after. If
//! that ever finds none, polling is off (logged).
//!
//! The window adapts the way Linux's guest halt-polling (`haltpoll`) does: it grows when work
//! arrived shortly after polling gave up and shrinks when the thread then slept long, down to
//! not polling at all, so an idle or lightly loaded server burns nothing. Between checks
//! the thread spins (a few dozen `PAUSE`s), holding its core like any busy thread: the
//! scheduler preempts it for a thread that wakes up and charges the time to its fair share;
//! at most one thread fewer than the machine has cores polls at a time.
//!
//! Why not `sched_yield` between checks, which looks like "poll only with time nobody else
//! wants": since Linux 6.6 the scheduler (EEVDF) treats a yield as the end of the thread's
//! slice and moves its virtual time forward as if it had used it. Thousands of yields per
//! second made the connection thread look greedy, so even a `nice 19` busy loop sharing its
//! core got 85% of it: measured, `redis-benchmark -P 16` PING fell from 2.2M to 0.31-0.41M
//! requests per second (Redis beside it, with the same neighbour: 2.2M). Without the yields
//! the neighbour gets its 1.5% and throughput stays.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The window a thread starts from, and returns to after it had shrunk to nothing.
const START_WINDOW: Duration = Duration::from_micros(10);

/// Spin-loop hints between two checks of the descriptor: 0.1-1.5 µs depending on the CPU
/// (a `PAUSE` takes 10-140 cycles; ~10 ns here), about what the check, a system call, costs.
const PAUSES_BETWEEN_CHECKS: u32 = 32;

thread_local! {
    static POLLER: Cell<Option<IdlePoller>> = const { Cell::new(None) };
}

/// The epoll descriptors open in this process (empty where there is no `/proc`).
fn epoll_descriptors() -> BTreeSet<RawFd> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.as_os_str() == "anon_inode:[eventpoll]")
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

/// Builds a runtime with `build` and finds its epoll descriptor: the first one that appeared
/// meanwhile (tokio duplicates it for its registry handle, so there may be two, the same
/// epoll). `None` if none appeared (the runtime's internals changed).
///
/// A wrong find costs nothing but useful polling: the descriptor is only ever asked for
/// readiness, and the runtime's own `epoll_wait` still decides what runs. Builds through
/// this function are serialised, so servers started together in one process (tests) do not
/// confuse each other.
pub fn runtime_epoll<T>(build: impl FnOnce() -> T) -> (T, Option<RawFd>) {
    static BUILDING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _building = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let before = epoll_descriptors();
    let runtime = build();
    let found = epoll_descriptors()
        .into_iter()
        .find(|fd| !before.contains(fd));
    (runtime, found)
}

/// Sets up polling for the current thread on `epoll` (the runtime's descriptor, which must
/// stay open while the runtime runs) with windows up to `max`. Zero or `None`: no polling.
/// Called once by each connection thread before it runs its runtime.
pub fn install(epoll: Option<RawFd>, max: Duration) {
    match epoll {
        Some(epoll) if !max.is_zero() => {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            MAX_POLLERS.store(cores.saturating_sub(1).max(1), Ordering::Relaxed);
            POLLER.set(Some(IdlePoller::new(epoll, max)));
        }
        Some(_) => {}
        None => tracing::warn!("idle polling off: the runtime's epoll descriptor was not found"),
    }
}

thread_local! {
    /// A subscriber on this thread was woken by a message since the thread last parked.
    static FANNING_OUT: Cell<bool> = const { Cell::new(false) };
    /// When this thread last ran out of work (about to park).
    static LAST_IDLE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// True if this thread ran out of work within `window`: it is not saturated, so a task can
/// give way to others at little cost to throughput.
pub fn idle_within(window: Duration) -> bool {
    LAST_IDLE
        .with(Cell::get)
        .is_some_and(|idle| idle.elapsed() < window)
}

/// Notes that a subscriber on this thread was woken by a message: the thread then sleeps
/// instead of polling when it runs out of work. Polling answers each PUBLISH the moment it
/// arrives, which wakes its subscribers for one message each (a write each); sleeping lets
/// several arrive together. Measured (`compare.py pubsub --pinned`, polling off): one
/// subscriber 0.94x -> 1.03x Redis, 1000 subscribers 1.31x -> 1.45x.
pub fn note_fan_out() {
    FANNING_OUT.with(|flag| flag.set(true));
}

/// The runtime's park hook: polls for up to the current window (unless the thread has been
/// delivering Pub/Sub messages, see [`note_fan_out`]).
pub fn before_park() {
    LAST_IDLE.with(|idle| idle.set(Some(Instant::now())));
    if FANNING_OUT.with(|flag| flag.replace(false)) {
        return;
    }
    if let Some(mut poller) = POLLER.get() {
        poller.before_park();
        POLLER.set(Some(poller));
    }
}

/// The runtime's unpark hook: adapts the window to how long the thread slept.
pub fn after_unpark() {
    if let Some(mut poller) = POLLER.get() {
        poller.after_unpark(Instant::now());
        POLLER.set(Some(poller));
    }
}

/// How many threads may poll at once: one core fewer than the machine has (at least one),
/// so that polling threads never occupy every core and a client or background thread that
/// wakes up always finds one free.
static MAX_POLLERS: AtomicUsize = AtomicUsize::new(1);
/// Threads polling right now.
static POLLING: AtomicUsize = AtomicUsize::new(0);

/// The process-wide count of polling threads.
struct Pollers;

impl Pollers {
    /// Takes a polling slot if one is free.
    fn enter() -> bool {
        let max = MAX_POLLERS.load(Ordering::Relaxed);
        POLLING
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |polling| {
                (polling < max).then_some(polling + 1)
            })
            .is_ok()
    }

    fn leave() {
        POLLING.fetch_sub(1, Ordering::Release);
    }
}

/// One thread's polling state.
#[derive(Clone, Copy)]
struct IdlePoller {
    epoll: RawFd,
    window: Window,
    /// When polling gave up and the thread went to sleep (None: polling found work).
    slept_at: Option<Instant>,
}

impl IdlePoller {
    fn new(epoll: RawFd, max: Duration) -> Self {
        IdlePoller {
            epoll,
            window: Window::new(max),
            slept_at: None,
        }
    }

    fn before_park(&mut self) {
        let window = self.window.current;
        let found_work = !window.is_zero() && Pollers::enter() && {
            let found = self.poll_for(window);
            Pollers::leave();
            found
        };
        self.slept_at = (!found_work).then(Instant::now);
    }

    /// Checks the runtime's descriptor until it has events (true) or `window` is over.
    fn poll_for(&self, window: Duration) -> bool {
        let started = Instant::now();
        loop {
            if sys::has_events(self.epoll) {
                return true;
            }
            if started.elapsed() >= window {
                return false;
            }
            for _ in 0..PAUSES_BETWEEN_CHECKS {
                std::hint::spin_loop();
            }
        }
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
    //! The system call of the poll loop.

    use std::os::fd::RawFd;

    /// Whether `epoll` has events waiting, without blocking or consuming them. An error
    /// counts as yes, so the thread goes to sleep in the runtime's own poll.
    pub fn has_events(epoll: RawFd) -> bool {
        let mut request = libc::pollfd {
            fd: epoll,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `request` is one valid pollfd; with a zero timeout the kernel only reads
        // the descriptor's readiness and writes `revents`.
        #[allow(unsafe_code)]
        let ready = unsafe { libc::poll(&mut request, 1, 0) };
        ready != 0
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    //! Not Linux: there is no epoll descriptor to find, so polling never starts.

    use std::os::fd::RawFd;

    pub fn has_events(_epoll: RawFd) -> bool {
        true
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

    /// The CPU time the calling thread has used.
    #[cfg(target_os = "linux")]
    fn thread_cpu_time() -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec for the kernel to fill.
        #[allow(unsafe_code)]
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
        Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    /// Pins the calling thread to `cpu`.
    #[cfg(target_os = "linux")]
    fn pin_to(cpu: usize) {
        // SAFETY: the set is zero-initialised plain data, filled by the libc macros, and
        // passed with its size; pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let status = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(status, 0, "sched_setaffinity");
    }

    /// A poller must not hand its core to a low-priority busy neighbour. Polling used to
    /// `sched_yield` between checks; on Linux's EEVDF scheduler each yield gives up the rest
    /// of the slice, and a `nice 19` busy loop on the same core took most of it (the server's
    /// throughput fell 7x). Compared as CPU time shares, not wall-clock time.
    #[cfg(target_os = "linux")]
    #[test]
    fn polling_keeps_the_core_from_a_low_priority_neighbour() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;

        // SAFETY: sched_getcpu takes nothing and returns the current CPU or -1.
        #[allow(unsafe_code)]
        let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).expect("sched_getcpu");
        let stop = Arc::new(AtomicBool::new(false));
        // Both sides on threads of their own, so that no pinning or niceness outlives the
        // test on a thread the test harness reuses.
        let neighbour = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                pin_to(cpu);
                // SAFETY: raises this thread's own niceness (PRIO_PROCESS with a thread id
                // applies to that thread on Linux); needs no privilege.
                #[allow(unsafe_code)]
                let status = unsafe {
                    libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19)
                };
                assert_eq!(status, 0, "setpriority");
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
                thread_cpu_time()
            }
        });
        let poller = std::thread::spawn(move || {
            pin_to(cpu);
            // An epoll descriptor with nothing registered never has events: the poller
            // polls for its whole window.
            // SAFETY: epoll_create1 returns a new descriptor, owned by nothing else, or -1
            // (checked before it is wrapped).
            #[allow(unsafe_code)]
            let epoll = unsafe {
                let fd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
                assert!(fd >= 0, "epoll_create1");
                OwnedFd::from_raw_fd(fd)
            };
            let poller = IdlePoller::new(epoll.as_raw_fd(), Duration::from_millis(300));
            let before = thread_cpu_time();
            assert!(!poller.poll_for(Duration::from_millis(300)));
            thread_cpu_time() - before
        });
        let polled = poller.join();
        stop.store(true, Ordering::Relaxed);
        let neighbour = neighbour.join().expect("neighbour thread");
        let polled = polled.expect("poller thread");
        assert!(
            neighbour * 4 < polled,
            "a nice-19 neighbour got {neighbour:?} of the core while the poller got {polled:?}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_the_runtime_epoll_and_sees_a_socket_become_readable() -> std::io::Result<()> {
        use std::io::Write;
        let (runtime, epoll) = runtime_epoll(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
        });
        let runtime = runtime?;
        let epoll = epoll.expect("building a tokio runtime creates an epoll descriptor");
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let mut client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (server, _) = listener.accept()?;
        server.set_nonblocking(true)?;
        let server = runtime.block_on(async { tokio::net::TcpStream::from_std(server) })?;
        // Registration itself may leave an initial event: let the runtime take it.
        runtime.block_on(tokio::task::yield_now());
        assert!(!sys::has_events(epoll), "nothing sent yet");
        client.write_all(b"PING\r\n")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !sys::has_events(epoll) {
            assert!(
                Instant::now() < deadline,
                "the runtime's epoll never reported the data"
            );
        }
        let mut buf = [0; 16];
        let read = runtime.block_on(async {
            server.readable().await?;
            server.try_read(&mut buf)
        })?;
        assert_eq!(&buf[..read], b"PING\r\n");
        Ok(())
    }
}
