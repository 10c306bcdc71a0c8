//! One event source for many containers: exits, OOM kills and, if asked,
//! periodic statistics, multiplexed on one epoll fd in one thread.
//!
//! Each watched container costs two fds (a pidfd for its exit, the OOM
//! notification of its memory cgroup) and no thread; a stats interval
//! adds one timerfd. [`Events`] is a blocking iterator, and also an
//! [`AsRawFd`] that a caller's own loop (epoll, mio, tokio's `AsyncFd`)
//! polls for readability before calling [`Events::try_next`].

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use serde::Serialize;

use crate::cgroups::oom::{OomCounter, OomWatch};
use crate::cgroups::stats::Stats;
use crate::cgroups::CgroupSet;
use crate::{Container, Error, ExitStatus, Result, Runtime};

/// What happened to a watched container.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// The init exited. `status` is `None` when it is not this process's
    /// child and its parent recorded nothing (see [`Runtime::open`]).
    /// The container is no longer watched after it.
    Exit {
        /// The container id.
        id: String,
        /// The init's host pid.
        pid: i32,
        /// How it ended, if known.
        status: Option<ExitStatus>,
    },
    /// The kernel OOM-killed `kills` processes of the container.
    Oom {
        /// The container id.
        id: String,
        /// Kills since the last `Oom` event of this container.
        kills: u64,
    },
    /// Resource usage, every interval given to [`Events::stats_every`].
    Stats {
        /// The container id.
        id: String,
        /// runc's statistics.
        stats: Box<Stats>,
    },
}

impl Event {
    /// The container the event is about.
    ///
    /// ```
    /// let e = rcrun::events::Event::Oom { id: "web".into(), kills: 1 };
    /// assert_eq!(e.id(), "web");
    /// ```
    pub fn id(&self) -> &str {
        match self {
            Event::Exit { id, .. } | Event::Oom { id, .. } | Event::Stats { id, .. } => id,
        }
    }

    /// The event as one line of JSON in runc's `events` shape: `type`,
    /// `id`, then `data` (exit: `pid` and `status`, null when unknown;
    /// oom: none, one line per kill is runc's, here `kills` says how many;
    /// stats: runc's statistics).
    ///
    /// ```
    /// let e = rcrun::events::Event::Oom { id: "web".into(), kills: 2 };
    /// assert_eq!(e.to_json(), r#"{"type":"oom","id":"web","data":{"kills":2}}"#);
    /// ```
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Line<'a, T: Serialize> {
            #[serde(rename = "type")]
            kind: &'a str,
            id: &'a str,
            data: T,
        }
        let line = |kind, data: serde_json::Value| {
            serde_json::to_string(&Line {
                kind,
                id: self.id(),
                data,
            })
            .expect("an event serializes")
        };
        match self {
            Event::Exit { pid, status, .. } => {
                line("exit", serde_json::json!({"pid": pid, "status": status}))
            }
            Event::Oom { kills, .. } => line("oom", serde_json::json!({ "kills": kills })),
            Event::Stats { stats, .. } => line(
                "stats",
                serde_json::to_value(stats).expect("stats serialize"),
            ),
        }
    }
}

/// A container being watched: its handle and its memory cgroup only
/// (statistics read the whole record at each tick; 500 containers must
/// cost little memory).
struct Watched {
    c: Container,
    memory: CgroupSet,
    oom: Option<OomWatch>,
    counter: OomCounter,
}

/// epoll tokens: the slot shifted left, the kind in the low bit; the
/// stats timer has its own.
const EXIT: u64 = 0;
const OOM: u64 = 1;
const TIMER: u64 = u64::MAX;

/// Exits, OOM kills and statistics of any number of containers, on one
/// epoll fd (see the module's documentation).
///
/// ```no_run
/// use rcrun::{events::{Event, Events}, CreateOptions, Runtime};
/// # fn main() -> rcrun::Result<()> {
/// let rt = Runtime::new("/run/my-agent");
/// let mut events = Events::new(&rt)?;
/// for id in ["a", "b", "c"] {
///     let c = rt.run(id, format!("/srv/bundles/{id}").as_ref(), CreateOptions::default())?;
///     events.watch(c)?;
/// }
/// // Ends once every watched container has exited.
/// for e in &mut events {
///     if let Event::Exit { id, status, .. } = e? {
///         println!("{id}: {status:?}");
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Events {
    rt: Runtime,
    epoll: Epoll,
    slots: Vec<Option<Watched>>,
    free: Vec<usize>,
    watching: usize,
    timer: Option<TimerFd>,
    pending: VecDeque<Event>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("epoll", &self.epoll.0)
            .field("watching", &self.watching)
            .field("pending", &self.pending.len())
            .finish()
    }
}

fn sys_err(what: &str) -> impl Fn(nix::errno::Errno) -> Error + '_ {
    move |e| Error::io(what.to_string(), std::io::Error::from(e))
}

impl Events {
    /// An event source for containers of `rt`, watching none yet.
    ///
    /// ```
    /// let rt = rcrun::Runtime::new("/run/my-agent");
    /// let events = rcrun::events::Events::new(&rt).unwrap();
    /// assert!(events.is_empty());
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when epoll_create fails.
    pub fn new(rt: &Runtime) -> Result<Events> {
        Ok(Events {
            rt: rt.clone(),
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(sys_err("epoll"))?,
            slots: Vec::new(),
            free: Vec::new(),
            watching: 0,
            timer: None,
            pending: VecDeque::new(),
        })
    }

    /// Also reports every watched container's statistics every
    /// `interval` (one timerfd for all).
    ///
    /// ```
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt).unwrap();
    /// events.stats_every(std::time::Duration::from_secs(5)).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when the timer cannot be made.
    pub fn stats_every(&mut self, interval: Duration) -> Result<()> {
        let t = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK,
        )
        .map_err(sys_err("timerfd"))?;
        let every = TimeSpec::from_duration(interval.max(Duration::from_millis(1)));
        t.set(Expiration::Interval(every), TimerSetTimeFlags::empty())
            .map_err(sys_err("timerfd"))?;
        self.epoll
            .add(&t, EpollEvent::new(EpollFlags::EPOLLIN, TIMER))
            .map_err(sys_err("epoll"))?;
        self.timer = Some(t);
        Ok(())
    }

    /// Watches a container through its handle (from [`Runtime::create`],
    /// [`Runtime::run`] or [`Runtime::open`]); the source keeps it, and
    /// reports its exit with the status the handle can give.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt)?;
    /// events.watch(rt.run("job", "/srv/bundles/job".as_ref(), Default::default())?)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Unsupported`] on kernels without pidfds (< 5.3);
    /// the store's error if the container is gone.
    pub fn watch(&mut self, c: Container) -> Result<()> {
        let memory = self.rt.cgroup(c.id())?.memory_only();
        let Some(pidfd) = c.pidfd_ref().map(|f| f.as_raw_fd()) else {
            return Err(Error::Unsupported("watching a container without pidfds"));
        };
        let oom = OomWatch::new(&memory);
        let counter = OomCounter::new(&memory);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let token = (slot as u64) << 1;
        // SAFETY (of the borrow): the pidfd lives in `c`, which the slot
        // keeps until the fd is removed from the epoll set.
        let fd = unsafe { BorrowedFd::borrow_raw(pidfd) };
        let added = self
            .epoll
            .add(fd, EpollEvent::new(EpollFlags::EPOLLIN, token | EXIT))
            .and_then(|()| match &oom {
                Some(o) => self
                    .epoll
                    .add(o, EpollEvent::new(EpollFlags::EPOLLIN, token | OOM)),
                None => Ok(()),
            });
        if let Err(e) = added {
            let _ = self.epoll.delete(fd);
            self.free.push(slot);
            return Err(sys_err("epoll")(e));
        }
        self.slots[slot] = Some(Watched {
            c,
            memory,
            oom,
            counter,
        });
        self.watching += 1;
        Ok(())
    }

    /// Watches the container `id` through [`Runtime::open`].
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt)?;
    /// events.watch_id("web")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Runtime::open`] and [`Self::watch`].
    pub fn watch_id(&mut self, id: &str) -> Result<()> {
        let c = self.rt.open(id)?;
        self.watch(c)
    }

    /// Stops watching `id`; returns its handle.
    ///
    /// ```
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt).unwrap();
    /// assert!(events.unwatch("nothing").is_none());
    /// ```
    pub fn unwatch(&mut self, id: &str) -> Option<Container> {
        let slot = self
            .slots
            .iter()
            .position(|w| w.as_ref().is_some_and(|w| w.c.id() == id))?;
        self.remove(slot).map(|w| w.c)
    }

    /// How many containers are watched.
    ///
    /// ```
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// assert_eq!(rcrun::events::Events::new(&rt).unwrap().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.watching
    }

    /// Whether no container is watched.
    ///
    /// ```
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// assert!(rcrun::events::Events::new(&rt).unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.watching == 0
    }

    /// The next event, waiting up to `timeout` (`None`: for as long as it
    /// takes). `Ok(None)` on time-out, or at once when nothing is watched,
    /// there is no stats timer and no event is pending.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt)?;
    /// events.watch_id("web")?;
    /// while let Some(e) = events.next_timeout(Some(std::time::Duration::from_secs(1)))? {
    ///     println!("{}", e.to_json());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] when epoll_wait fails.
    pub fn next_timeout(&mut self, timeout: Option<Duration>) -> Result<Option<Event>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(Some(e));
            }
            if self.watching == 0 && self.timer.is_none() {
                return Ok(None);
            }
            let t = match timeout {
                None => EpollTimeout::NONE,
                Some(d) => EpollTimeout::try_from(d).unwrap_or(EpollTimeout::MAX),
            };
            let mut ready = [EpollEvent::empty(); 64];
            let n = match self.epoll.wait(&mut ready, t) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => r.map_err(sys_err("epoll_wait"))?,
            };
            if n == 0 {
                return Ok(None);
            }
            for e in &ready[..n] {
                self.ready(e.data());
            }
            if timeout.is_some() && self.pending.is_empty() {
                return Ok(None);
            }
        }
    }

    /// Whether the stream has ended: no event pending, nothing watched
    /// and no stats timer.
    ///
    /// ```
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// assert!(rcrun::events::Events::new(&rt).unwrap().is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.pending.is_empty() && self.watching == 0 && self.timer.is_none()
    }

    /// The next event if one is ready, without waiting: for a caller
    /// whose own loop saw this source's fd readable.
    ///
    /// ```no_run
    /// # fn main() -> rcrun::Result<()> {
    /// # let rt = rcrun::Runtime::new("/run/my-agent");
    /// let mut events = rcrun::events::Events::new(&rt)?;
    /// // ... after the caller's poll found `events.as_raw_fd()` readable:
    /// while let Some(e) = events.try_next()? {
    ///     println!("{}", e.to_json());
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`Self::next_timeout`].
    pub fn try_next(&mut self) -> Result<Option<Event>> {
        self.next_timeout(Some(Duration::ZERO))
    }

    fn ready(&mut self, token: u64) {
        if token == TIMER {
            if let Some(t) = &self.timer {
                let _ = t.wait(); // consume the expirations
            }
            for w in self.slots.iter_mut().flatten() {
                // A kill the counter showed only after its notification
                // (v1 signals before it kills) is reported here.
                let kills = w.counter.kills(&w.memory, false);
                if kills > 0 {
                    self.pending.push_back(Event::Oom {
                        id: w.c.id().to_string(),
                        kills,
                    });
                }
                match self.rt.stats(w.c.id()) {
                    Ok(stats) => self.pending.push_back(Event::Stats {
                        id: w.c.id().to_string(),
                        stats: Box::new(stats),
                    }),
                    Err(e) => log::debug!("container {}: stats: {e}", w.c.id()),
                }
            }
            return;
        }
        let slot = (token >> 1) as usize;
        let Some(w) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        if token & 1 == OOM {
            let alive = w.oom.as_ref().is_some_and(|o| o.wait());
            let kills = w.counter.kills(&w.memory, true);
            if kills > 0 {
                self.pending.push_back(Event::Oom {
                    id: w.c.id().to_string(),
                    kills,
                });
            }
            if !alive {
                if let Some(o) = w.oom.take() {
                    let _ = self.epoll.delete(&o);
                }
            }
            return;
        }
        // The exit: the last kills first (an OOM kill of the init is why
        // it exited), then the status.
        let kills = w.counter.kills(&w.memory, false);
        if kills > 0 {
            self.pending.push_back(Event::Oom {
                id: w.c.id().to_string(),
                kills,
            });
        }
        let status = match w.c.try_wait() {
            Ok(st) => st,
            Err(Error::ExitUnknown { .. }) => None,
            Err(e) => {
                log::debug!("container {}: its exit status: {e}", w.c.id());
                None
            }
        };
        let w = self.remove(slot).expect("watched");
        self.pending.push_back(Event::Exit {
            id: w.c.id().to_string(),
            pid: w.c.pid(),
            status,
        });
    }

    fn remove(&mut self, slot: usize) -> Option<Watched> {
        let w = self.slots.get_mut(slot)?.take()?;
        if let Some(fd) = w.c.pidfd_ref() {
            let _ = self.epoll.delete(fd);
        }
        if let Some(o) = &w.oom {
            let _ = self.epoll.delete(o);
        }
        self.free.push(slot);
        self.watching -= 1;
        Some(w)
    }
}

impl Iterator for Events {
    type Item = Result<Event>;

    /// Blocks for the next event; `None` once nothing is watched (and no
    /// stats timer runs).
    fn next(&mut self) -> Option<Result<Event>> {
        self.next_timeout(None).transpose()
    }
}

impl AsFd for Events {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }
}

impl AsRawFd for Events {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.0.as_raw_fd()
    }
}

/// [`Events`] in a tokio program (cargo feature `tokio`): the epoll fd
/// registered with tokio's reactor through `AsyncFd`, so waiting for the
/// next event never blocks a worker thread.
///
/// ```no_run
/// # #[cfg(feature = "tokio")]
/// # async fn agent(rt: rcrun::Runtime) -> rcrun::Result<()> {
/// let mut events = rcrun::events::AsyncEvents::new(rcrun::events::Events::new(&rt)?)?;
/// events.get_mut().watch_id("web")?;
/// while let Some(e) = events.next().await {
///     println!("{}", e?.to_json());
/// }
/// # Ok(()) }
/// ```
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct AsyncEvents {
    inner: tokio::io::unix::AsyncFd<Events>,
}

#[cfg(feature = "tokio")]
impl AsyncEvents {
    /// Registers `events` with the current tokio runtime.
    ///
    /// ```no_run
    /// # async fn f(rt: rcrun::Runtime) -> rcrun::Result<()> {
    /// let events = rcrun::events::AsyncEvents::new(rcrun::events::Events::new(&rt)?)?;
    /// # let _ = events;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] outside a tokio runtime or when registration fails.
    pub fn new(events: Events) -> Result<AsyncEvents> {
        if let Err(e) = tokio::runtime::Handle::try_current() {
            let e = std::io::Error::other(e);
            return Err(Error::io("events: registering with tokio", e));
        }
        // SAFETY: the fd is the epoll fd `Events` owns for its whole life,
        // and its `as_raw_fd` always returns that same fd.
        let r = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(events, tokio::io::Interest::READABLE)
        };
        let inner = r.map_err(|e| Error::io("events: registering with tokio", e.into_parts().1))?;
        Ok(AsyncEvents { inner })
    }

    /// The event source, to watch or unwatch containers.
    ///
    /// ```no_run
    /// # fn f(mut events: rcrun::events::AsyncEvents) -> rcrun::Result<()> {
    /// events.get_mut().watch_id("web")?;
    /// # Ok(()) }
    /// ```
    pub fn get_mut(&mut self) -> &mut Events {
        self.inner.get_mut()
    }

    /// The next event; `None` once the stream has ended
    /// ([`Events::is_done`]).
    ///
    /// ```no_run
    /// # async fn f(mut events: rcrun::events::AsyncEvents) -> rcrun::Result<()> {
    /// while let Some(e) = events.next().await {
    ///     println!("{}", e?.to_json());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            match self.inner.get_mut().try_next() {
                Ok(Some(e)) => return Some(Ok(e)),
                Err(e) => return Some(Err(e)),
                Ok(None) if self.inner.get_ref().is_done() => return None,
                Ok(None) => {}
            }
            let mut guard = match self.inner.readable_mut().await {
                Ok(g) => g,
                Err(e) => return Some(Err(Error::io("events: waiting", e))),
            };
            match guard.get_inner_mut().try_next() {
                Ok(Some(e)) => return Some(Ok(e)),
                Err(e) => return Some(Err(e)),
                Ok(None) => guard.clear_ready(),
            }
        }
    }
}

// An agent moves its event source to the thread that runs its loop.
const _: () = {
    const fn send<T: Send>() {}
    send::<Events>();
};
