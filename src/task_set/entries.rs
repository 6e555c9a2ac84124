//! The storage behind a set's table: one 16-byte [`Entry`] per task (for a
//! `T` of at most 8 bytes), in chunks of 256 so that growing never copies
//! the table and a finished task costs its entry and no slack, with the
//! finished entries linked in completion order through the entries
//! themselves (no queue beside them).
//!
//! Births are kept as milliseconds since the set was made, truncated to 32
//! bits: an age is the wrapping difference, right for any task younger
//! than 49 days.

use std::panic::Location;

use super::error::TaskError;

/// No entry: the end of the finished list (and a new outcome's `next`).
pub(super) const NONE: u32 = u32::MAX;
/// Entries per chunk after the first (which grows like a `Vec` up to it,
/// so that a small set stays small).
const CHUNK: usize = 256;
/// Where a task was started (shown in straggler reports).
pub(super) type CallSite = &'static Location<'static>;

/// One task. The birth and the link are variant fields, not structs, so
/// the tag shares their first word.
pub(super) enum Entry<T, E> {
    /// Waiting for a slot of the limit.
    Queued { millis: u32, location: CallSite },
    /// Holding a slot.
    Running { millis: u32, location: CallSite },
    /// Returned `Ok(value)`; `next` links the finished list.
    Done { next: u32, value: T },
    /// Did not succeed (boxed: failures are rare).
    Failed { next: u32, error: Box<TaskError<E>> },
    /// Handed out (or, in `join`, being handed out).
    Taken,
}

pub(super) struct Entries<T, E> {
    chunks: Vec<Vec<Entry<T, E>>>,
    len: usize,
    /// The finished list: oldest and newest, `NONE` when empty.
    head: u32,
    tail: u32,
}

impl<T, E> Entries<T, E> {
    pub(super) fn new() -> Entries<T, E> {
        Entries {
            chunks: Vec::new(),
            len: 0,
            head: NONE,
            tail: NONE,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Appends a counted task's entry; returns its index.
    ///
    /// # Panics
    ///
    /// Past `u32::MAX - 1` tasks since the set was last empty and handed
    /// out, with a message.
    pub(super) fn push(&mut self, entry: Entry<T, E>) -> usize {
        let index = self.len;
        assert!(
            index < NONE as usize,
            "a TaskSet holds at most {NONE} tasks between two moments it is empty"
        );
        if index % CHUNK == 0 {
            // Every chunk but the last is full.
            let capacity = if index == 0 { 4 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        self.chunks[index / CHUNK].push(entry);
        self.len += 1;
        index
    }

    pub(super) fn get(&self, index: usize) -> Option<&Entry<T, E>> {
        self.chunks.get(index / CHUNK)?.get(index % CHUNK)
    }

    pub(super) fn get_mut(&mut self, index: usize) -> Option<&mut Entry<T, E>> {
        self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)
    }

    /// Every entry with its index, in spawn order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (usize, &Entry<T, E>)> {
        self.chunks.iter().flatten().enumerate()
    }

    /// Stores a counted task's outcome (`Done` or `Failed`, its `next`
    /// `NONE`) at `index` and appends it to the finished list.
    pub(super) fn finish(&mut self, index: usize, entry: Entry<T, E>) {
        let Some(slot) = self.get_mut(index) else {
            return;
        };
        *slot = entry;
        let at = index as u32; // below NONE: see `push`
        match self.get_mut(self.tail as usize) {
            Some(Entry::Done { next, .. } | Entry::Failed { next, .. }) => *next = at,
            _ => self.head = at,
        }
        self.tail = at;
    }

    /// The oldest finished entry not handed out yet, with its index; its
    /// place becomes `Taken`.
    pub(super) fn pop_finished(&mut self) -> Option<(usize, Entry<T, E>)> {
        let index = self.head as usize;
        let entry = std::mem::replace(self.get_mut(index)?, Entry::Taken);
        self.head = match entry {
            Entry::Done { next, .. } | Entry::Failed { next, .. } => next,
            _ => NONE,
        };
        if self.head == NONE {
            self.tail = NONE;
        }
        Some((index, entry))
    }

    /// The finished entries not handed out yet, in completion order.
    pub(super) fn finished(&self) -> impl Iterator<Item = (usize, &Entry<T, E>)> {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let index = at as usize;
            let entry = self.get(index)?;
            at = match entry {
                Entry::Done { next, .. } | Entry::Failed { next, .. } => *next,
                _ => NONE,
            };
            Some((index, entry))
        })
    }

    /// Takes every entry, leaving the storage empty (numbering restarts).
    pub(super) fn take(&mut self) -> impl Iterator<Item = Entry<T, E>> {
        let taken = std::mem::replace(self, Entries::new());
        taken.chunks.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_with_a_small_value_is_16_bytes() {
        assert_eq!(size_of::<Entry<(), String>>(), 16);
        assert_eq!(size_of::<Entry<u64, std::io::Error>>(), 16);
    }

    #[test]
    fn the_finished_list_keeps_completion_order_across_chunks() {
        let mut entries = Entries::<usize, String>::new();
        let location = Location::caller();
        for _ in 0..3 * CHUNK {
            entries.push(Entry::Running {
                millis: 0,
                location,
            });
        }
        for index in (0..3 * CHUNK).rev() {
            entries.finish(
                index,
                Entry::Done {
                    next: NONE,
                    value: index,
                },
            );
        }
        let order: Vec<usize> = entries.finished().map(|(index, _)| index).collect();
        assert_eq!(order, (0..3 * CHUNK).rev().collect::<Vec<_>>());
        assert!(
            matches!(entries.pop_finished(), Some((i, Entry::Done { value, .. })) if i == value)
        );
        assert_eq!(entries.finished().count(), 3 * CHUNK - 1);
        while entries.pop_finished().is_some() {}
        assert_eq!(entries.finished().count(), 0);
        assert_eq!(entries.take().count(), 3 * CHUNK);
        assert_eq!(entries.len(), 0);
    }
}
