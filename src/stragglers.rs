//! The registry of named guards and the [`Stragglers`] report built from it.
//!
//! Only [`Group::add_named`](crate::Group::add_named) (and cloning a named
//! guard) touches the registry; anonymous guards never lock it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::sync::{lock, Mutex};

/// The live named guards of one group, oldest first.
#[derive(Default)]
pub(crate) struct Registry {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// The id the next named guard gets. Ids only grow, so iterating the map
    /// in key order lists guards oldest first.
    next_id: u64,
    map: BTreeMap<u64, Entry>,
}

impl Entries {
    fn push(&mut self, name: Cow<'static, str>, location: &'static Location<'static>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        // `born` is read under the lock, so ids and birth times agree on the order.
        let born = Instant::now();
        self.map.insert(
            id,
            Entry {
                name,
                location,
                born,
            },
        );
        id
    }
}

struct Entry {
    name: Cow<'static, str>,
    location: &'static Location<'static>,
    born: Instant,
}

impl Registry {
    /// Records a named guard and returns its id.
    pub(crate) fn insert(
        &self,
        name: Cow<'static, str>,
        location: &'static Location<'static>,
    ) -> u64 {
        lock(&self.entries).push(name, location)
    }

    /// Records a second guard under the same name and location as guard `id`
    /// (a clone), with its own age, and returns the new id.
    pub(crate) fn duplicate(&self, id: u64) -> u64 {
        let mut entries = lock(&self.entries);
        let (name, location) = match entries.map.get(&id) {
            Some(entry) => (entry.name.clone(), entry.location),
            // Unreachable while the guard being cloned is alive (it removes its
            // entry only when it drops); keep a readable placeholder anyway.
            None => (Cow::Borrowed("<unknown>"), Location::caller()),
        };
        entries.push(name, location)
    }

    /// Forgets guard `id` (it dropped).
    pub(crate) fn remove(&self, id: u64) {
        lock(&self.entries).map.remove(&id);
    }

    /// Takes a consistent snapshot: `count` is read while the registry is
    /// locked, and every named guard is counted before it is registered and
    /// unregistered before it stops counting, so `count >= named.len()`.
    pub(crate) fn snapshot(&self, count: impl FnOnce() -> usize) -> Stragglers {
        let entries = lock(&self.entries);
        let now = Instant::now();
        let count = count();
        let named = entries
            .map
            .values()
            .map(|entry| {
                Straggler::new(
                    entry.name.clone(),
                    now.saturating_duration_since(entry.born),
                    entry.location,
                )
            })
            .collect();
        Stragglers::new(count, named)
    }
}

/// Who was still running when a group was asked to finish.
///
/// Returned as the error of [`Group::wait_timeout`] and [`Group::wait_deadline`]
/// (feature `smol`) and [`Group::wait_blocking_timeout`](crate::Group::wait_blocking_timeout), and at any time by
/// [`Group::stragglers`](crate::Group::stragglers). It is a snapshot: the
/// group may have moved on since.
///
/// [`count`](Self::count) counts every live guard; only guards made with
/// [`Group::add_named`](crate::Group::add_named) (and their clones) are listed
/// by name, oldest first, so `count() >= names().len()` always holds.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use smol_graceful::Group;
///
/// # smol::block_on(async {
/// let group = Group::new();
/// let _flusher = group.add_named("metrics flusher").unwrap();
/// let _anonymous = group.add().unwrap();
///
/// let stragglers = group.wait_timeout(Duration::from_millis(10)).await.unwrap_err();
/// assert_eq!(stragglers.count(), 2);
/// assert_eq!(stragglers.names(), ["metrics flusher"]);
/// println!("{stragglers}");
/// # });
/// ```
///
#[cfg_attr(
    feature = "smol",
    doc = "[`Group::wait_timeout`]: crate::Group::wait_timeout"
)]
#[cfg_attr(
    feature = "smol",
    doc = "[`Group::wait_deadline`]: crate::Group::wait_deadline"
)]
#[cfg_attr(not(feature = "smol"), doc = "[`Group::wait_timeout`]: crate#features")]
#[cfg_attr(
    not(feature = "smol"),
    doc = "[`Group::wait_deadline`]: crate#features"
)]
#[derive(Clone)]
pub struct Stragglers {
    /// Boxed, so that a report is one pointer and so is
    /// `Result<(), Stragglers>`: a wait with a timeout that finishes in time
    /// returns 8 bytes, not 32, and only a report actually made allocates.
    report: Box<Report>,
}

/// What a [`Stragglers`] report says.
#[derive(Clone)]
struct Report {
    count: usize,
    named: Vec<Straggler>,
}

impl Stragglers {
    /// A report of `count` live guards, `named` of them listed (oldest first).
    pub(crate) fn new(count: usize, named: Vec<Straggler>) -> Stragglers {
        debug_assert!(count >= named.len());
        Stragglers {
            report: Box::new(Report { count, named }),
        }
    }

    /// How many guards were alive, named or not.
    pub fn count(&self) -> usize {
        self.report.count
    }

    /// The names of the live named guards, oldest first.
    pub fn names(&self) -> Vec<&str> {
        self.report.named.iter().map(Straggler::name).collect()
    }

    /// Each live named guard with its age and where it was added, oldest first.
    pub fn named(&self) -> &[Straggler] {
        &self.report.named
    }

    /// True if no guard was alive.
    pub fn is_empty(&self) -> bool {
        self.report.count == 0
    }
}

impl fmt::Debug for Stragglers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stragglers")
            .field("count", &self.report.count)
            .field("named", &self.report.named)
            .finish()
    }
}

impl fmt::Display for Stragglers {
    /// A multi-line report: the count, then one line per named guard.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Report { count, named } = &*self.report;
        let anonymous = count.saturating_sub(named.len());
        let noun = if *count == 1 { "task" } else { "tasks" };
        write!(f, "{count} {noun} still running")?;
        if !named.is_empty() {
            write!(f, " ({} named, {anonymous} unnamed)", named.len())?;
        }
        for straggler in named {
            write!(f, "\n  - {straggler}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Stragglers {}

/// One named guard that was still alive: its name, age and origin.
#[derive(Clone)]
pub struct Straggler {
    name: Cow<'static, str>,
    age: Duration,
    location: &'static Location<'static>,
}

impl Straggler {
    pub(crate) fn new(
        name: Cow<'static, str>,
        age: Duration,
        location: &'static Location<'static>,
    ) -> Straggler {
        Straggler {
            name,
            age,
            location,
        }
    }

    /// The name given to [`Group::add_named`](crate::Group::add_named).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the guard had been alive when the snapshot was taken.
    pub fn age(&self) -> Duration {
        self.age
    }

    /// Where `add_named` was called (for a `TaskSet` task:
    /// where it was spawned).
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
}

impl fmt::Debug for Straggler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Straggler")
            .field("name", &self.name)
            .field("age", &self.age)
            .field("location", &format_args!("{}", self.location))
            .finish()
    }
}

impl fmt::Display for Straggler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (running for {:.3}s, added at {})",
            self.name,
            self.age.as_secs_f64(),
            self.location
        )
    }
}
