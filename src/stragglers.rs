//! The registry of named guards and the [`Stragglers`] report built from it.
//!
//! Only [`Group::add_named`](crate::Group::add_named) (and cloning a named
//! guard) touches the registry; anonymous guards never lock it.
//!
//! # Layout
//!
//! Named guards are many and snapshots are rare, so the registry is laid out
//! for the guards: a slab of 32-byte slots (birth time, call site, name) that
//! a guard's token indexes, with vacant slots chained into a free list, so
//! registering and unregistering are O(1) and allocate nothing once the slab
//! has grown. A snapshot sorts the live slots by birth time.
//!
//! The slab is a list of chunks of at most [`CHUNK`] slots, each grown by
//! doubling up to that size, so it never holds more than one partly used
//! chunk's slack (a single `Vec` would hold up to half its capacity unused
//! after growing). When the last named guard goes, the slab shrinks back to
//! its first chunk, so a burst of named guards does not keep its memory.

use std::borrow::Cow;
use std::fmt;
use std::mem;
use std::panic::Location;
use std::time::{Duration, Instant};

use crate::sync::{lock, Mutex};

/// The largest chunk of the slab, in slots (8 KiB of 32-byte slots).
const CHUNK: usize = 256;

/// The live named guards of one group.
#[derive(Default)]
pub(crate) struct Registry {
    /// `None` until the group's first named guard: a group that never names
    /// one (most do not) pays one word here, and nothing to make or drop,
    /// for the slab's bookkeeping.
    entries: Mutex<Option<Box<Entries>>>,
}

#[derive(Default)]
struct Entries {
    /// The clock reading birth times count from, taken by the first
    /// registration (so that a group that never names a guard reads no clock).
    epoch: Option<Instant>,
    /// The least birth time the next entry may get: birth times strictly
    /// grow, so sorting by them lists guards in the order they registered
    /// even when the clock did not advance between two registrations.
    next_born: u64,
    /// The slab: slot `i` is `chunks[i / CHUNK][i % CHUNK]`. Every chunk but
    /// the last is full.
    chunks: Vec<Vec<Slot>>,
    /// The first vacant slot; each vacant slot links to the next.
    free: Option<usize>,
    /// How many slots are taken.
    live: usize,
}

enum Slot {
    Taken(Entry),
    Vacant { next: Option<usize> },
}

/// One live named guard: 32 bytes.
struct Entry {
    /// Nanoseconds from the registry's epoch to the guard's birth (strictly
    /// growing: see [`Entries::next_born`]). Eight bytes where an `Instant`
    /// takes sixteen.
    born: u64,
    location: &'static Location<'static>,
    name: Name,
}

/// A guard's name in 16 bytes (a `Cow<str>` takes 24): a formatted name is
/// boxed once more, so that the common static name keeps the slot small.
#[derive(Clone)]
enum Name {
    Static(&'static str),
    #[allow(
        clippy::box_collection,
        reason = "a thin pointer: a `Box<str>` would make `Name` 24 bytes"
    )]
    Owned(Box<String>),
}

impl Name {
    fn new(name: Cow<'static, str>) -> Name {
        match name {
            Cow::Borrowed(name) => Name::Static(name),
            Cow::Owned(name) => Name::Owned(Box::new(name)),
        }
    }

    fn to_cow(&self) -> Cow<'static, str> {
        match self {
            Name::Static(name) => Cow::Borrowed(name),
            Name::Owned(name) => Cow::Owned(String::clone(name)),
        }
    }
}

impl Entries {
    /// Nanoseconds from the epoch to `now` (saturating: 584 years).
    fn nanos(epoch: Instant, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(epoch).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// Registers a guard named `name`, born now, and returns its slot.
    fn push(&mut self, name: Name, location: &'static Location<'static>) -> usize {
        // The clock is read under the lock, so slots' birth times agree with
        // the order in which they were registered.
        let now = Instant::now();
        let epoch = *self.epoch.get_or_insert(now);
        let born = Entries::nanos(epoch, now).max(self.next_born);
        self.next_born = born.saturating_add(1);
        let entry = Slot::Taken(Entry {
            born,
            location,
            name,
        });
        self.live += 1;
        if let Some(index) = self.free {
            let slot = &mut self.chunks[index / CHUNK][index % CHUNK];
            if let Slot::Vacant { next } = mem::replace(slot, entry) {
                self.free = next;
            }
            return index;
        }
        if self.chunks.last().is_none_or(|chunk| chunk.len() == CHUNK) {
            self.chunks.push(Vec::new());
        }
        let chunks = self.chunks.len();
        let chunk = &mut self.chunks[chunks - 1];
        if chunk.len() == chunk.capacity() {
            // Doubling, as `Vec` would, but never past `CHUNK`.
            let grown = (chunk.capacity() * 2).clamp(4, CHUNK);
            chunk.reserve_exact(grown - chunk.len());
        }
        let index = (chunks - 1) * CHUNK + chunk.len();
        chunk.push(entry);
        index
    }

    fn get(&self, index: usize) -> Option<&Entry> {
        match self.chunks.get(index / CHUNK)?.get(index % CHUNK)? {
            Slot::Taken(entry) => Some(entry),
            Slot::Vacant { .. } => None,
        }
    }

    /// Frees slot `index` and returns its entry (for the caller to drop
    /// after unlocking).
    fn take(&mut self, index: usize) -> Option<Entry> {
        let slot = self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)?;
        if let Slot::Vacant { .. } = slot {
            return None;
        }
        let next = self.free;
        let Slot::Taken(entry) = mem::replace(slot, Slot::Vacant { next }) else {
            return None;
        };
        self.free = Some(index);
        self.live -= 1;
        if self.live == 0 {
            // Every slot is vacant: shrink back to the first chunk. This
            // drops each slot pushed since the last time the registry was
            // empty once, so it is O(1) amortized over those pushes.
            self.chunks.truncate(1);
            self.chunks.shrink_to(4);
            if let Some(first) = self.chunks.first_mut() {
                first.clear();
            }
            self.free = None;
        }
        Some(entry)
    }
}

impl Registry {
    /// Records a named guard and returns its slot.
    pub(crate) fn insert(
        &self,
        name: Cow<'static, str>,
        location: &'static Location<'static>,
    ) -> usize {
        // Box a formatted name before locking.
        let name = Name::new(name);
        lock(&self.entries)
            .get_or_insert_with(Box::default)
            .push(name, location)
    }

    /// Records a second guard under the same name and location as the guard
    /// in slot `index` (a clone), with its own age, and returns the new slot.
    pub(crate) fn duplicate(&self, index: usize) -> usize {
        let mut entries = lock(&self.entries);
        let entries = entries.get_or_insert_with(Box::default);
        let (name, location) = match entries.get(index) {
            Some(entry) => (entry.name.clone(), entry.location),
            // Unreachable while the guard being cloned is alive (it frees its
            // slot only when it drops); keep a readable placeholder anyway.
            None => (Name::Static("<unknown>"), Location::caller()),
        };
        entries.push(name, location)
    }

    /// Forgets the guard in slot `index` (it dropped).
    pub(crate) fn remove(&self, index: usize) {
        // The entry (a formatted name's buffers) is freed after unlocking.
        let _entry = lock(&self.entries)
            .as_mut()
            .and_then(|entries| entries.take(index));
    }

    /// Takes a consistent snapshot: `count` is read while the registry is
    /// locked, and every named guard is counted before it is registered and
    /// unregistered before it stops counting, so `count >= named.len()`.
    pub(crate) fn snapshot(&self, count: impl FnOnce() -> usize) -> Stragglers {
        let entries = lock(&self.entries);
        let now = Instant::now();
        let count = count();
        let Some(slab) = entries.as_deref() else {
            return Stragglers::new(count, Vec::new());
        };
        let now = slab.epoch.map_or(0, |epoch| Entries::nanos(epoch, now));
        let mut named = slab
            .chunks
            .iter()
            .flatten()
            .filter_map(|slot| match slot {
                Slot::Taken(entry) => Some((
                    entry.born,
                    Straggler::new(
                        entry.name.to_cow(),
                        Duration::from_nanos(now.saturating_sub(entry.born)),
                        entry.location,
                    ),
                )),
                Slot::Vacant { .. } => None,
            })
            .collect::<Vec<_>>();
        drop(entries);
        // Oldest first. Birth times are distinct, so the order is the order
        // of registration.
        named.sort_unstable_by_key(|&(born, _)| born);
        let named = named.into_iter().map(|(_, straggler)| straggler).collect();
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

    /// How long the guard had been alive when the snapshot was taken. A
    /// `TaskSet`'s tasks are aged to the millisecond, on Linux from the
    /// coarse monotonic clock (to within its tick, 1 to 4 ms).
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

#[cfg(test)]
mod tests {
    //! The registry's slab; behaviour is tested through `Group` in
    //! `tests/group.rs`.

    use super::*;

    fn here() -> &'static Location<'static> {
        Location::caller()
    }

    fn names(registry: &Registry) -> Vec<String> {
        let snapshot = registry.snapshot(|| usize::MAX);
        snapshot
            .names()
            .iter()
            .map(|name| name.to_string())
            .collect()
    }

    #[test]
    fn a_slot_is_32_bytes() {
        // The memory of a live named guard: this slot, plus its 32-byte
        // token (`group/count.rs`).
        assert_eq!(size_of::<Name>(), 16);
        assert_eq!(size_of::<Slot>(), 32);
    }

    #[test]
    fn vacant_slots_are_reused_and_the_order_is_by_birth_not_by_slot() {
        let registry = Registry::default();
        let a = registry.insert("a".into(), here());
        let b = registry.insert("b".into(), here());
        let c = registry.insert(format!("c{}", 1).into(), here());
        registry.remove(a);
        // Reuses `a`'s slot, yet is the youngest.
        let d = registry.insert("d".into(), here());
        assert_eq!(d, a);
        let e = registry.duplicate(c);
        assert_eq!(names(&registry), ["b", "c1", "d", "c1"]);
        registry.remove(c);
        registry.remove(c); // a second removal of a vacant slot changes nothing
        assert_eq!(names(&registry), ["b", "d", "c1"]);
        for slot in [b, d, e] {
            registry.remove(slot);
        }
        assert!(names(&registry).is_empty());
    }

    #[test]
    fn chunks_grow_to_at_most_chunk_slots_and_shrink_when_the_last_guard_goes() {
        let registry = Registry::default();
        let slots: Vec<usize> = (0..CHUNK * 2 + 3)
            .map(|_| registry.insert("n".into(), here()))
            .collect();
        assert_eq!(slots, (0..CHUNK * 2 + 3).collect::<Vec<_>>());
        {
            let entries = lock(&registry.entries);
            let entries = entries.as_deref().unwrap();
            let capacities: Vec<usize> = entries.chunks.iter().map(Vec::capacity).collect();
            assert_eq!(capacities, [CHUNK, CHUNK, 4]);
        }
        for &slot in &slots {
            registry.remove(slot);
        }
        let entries = lock(&registry.entries);
        let entries = entries.as_deref().unwrap();
        assert_eq!(entries.chunks.len(), 1);
        assert!(entries.chunks.capacity() <= 4);
        assert!(entries.chunks[0].is_empty());
        assert_eq!(entries.free, None);
        assert_eq!(entries.live, 0);
    }

    #[test]
    fn birth_times_strictly_grow_in_registration_order() {
        let registry = Registry::default();
        for _ in 0..1000 {
            registry.insert("n".into(), here());
        }
        let entries = lock(&registry.entries);
        let borns: Vec<u64> = entries
            .as_deref()
            .unwrap()
            .chunks
            .iter()
            .flatten()
            .map(|slot| match slot {
                Slot::Taken(entry) => entry.born,
                Slot::Vacant { .. } => unreachable!(),
            })
            .collect();
        assert!(borns.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
