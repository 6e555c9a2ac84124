//! Property test: random sequences of group operations, checked after every step
//! against a plain reference (a closed flag and the live guards' names).
//!
//! 10,000 cases by default (`PROPTEST_CASES` overrides).

use std::pin::Pin;

use futures_lite::future::{block_on, poll_once};
use proptest::prelude::*;
use smol_graceful::futures::Wait;
use smol_graceful::{Closed, Group, Guard};

#[derive(Clone, Debug)]
enum Op {
    Add,
    AddNamed(u8),
    /// Clone the live guard at this index (modulo the number alive).
    Clone(usize),
    /// Drop the live guard at this index (modulo the number alive).
    Drop(usize),
    Close,
    /// Make a `wait` future if there is none (which closes), then poll it.
    PollWait,
    /// Drop the current `wait` future (cancellation).
    CancelWait,
    Stragglers,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Add),
        2 => (0u8..4).prop_map(Op::AddNamed),
        2 => any::<usize>().prop_map(Op::Clone),
        4 => any::<usize>().prop_map(Op::Drop),
        1 => Just(Op::Close),
        2 => Just(Op::PollWait),
        1 => Just(Op::CancelWait),
        1 => Just(Op::Stragglers),
    ]
}

/// The reference: what is alive, in birth order, and whether closed.
#[derive(Default)]
struct Reference {
    closed: bool,
    /// One entry per live guard: its name, if named. Birth order.
    live: Vec<(u64, Option<String>)>,
    next_birth: u64,
}

impl Reference {
    fn born(&mut self, name: Option<String>) {
        self.live.push((self.next_birth, name));
        self.next_birth += 1;
    }

    fn names(&self) -> Vec<String> {
        let mut named: Vec<&(u64, Option<String>)> =
            self.live.iter().filter(|(_, n)| n.is_some()).collect();
        named.sort_by_key(|(birth, _)| *birth);
        named.into_iter().filter_map(|(_, n)| n.clone()).collect()
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let group = Group::new();
    let mut reference = Reference::default();
    // Guards and reference entries at the same index describe the same guard.
    let mut guards: Vec<Guard> = Vec::new();
    let mut wait: Option<Pin<Box<Wait<'_>>>> = None;

    for op in ops {
        match op {
            Op::Add => match group.add() {
                Ok(guard) => {
                    prop_assert!(!reference.closed, "add succeeded after close");
                    guards.push(guard);
                    reference.born(None);
                }
                Err(Closed) => prop_assert!(reference.closed, "add failed on an open group"),
            },
            Op::AddNamed(n) => {
                let name = format!("task {n}");
                match group.add_named(name.clone()) {
                    Ok(guard) => {
                        prop_assert!(!reference.closed);
                        guards.push(guard);
                        reference.born(Some(name));
                    }
                    Err(Closed) => prop_assert!(reference.closed),
                }
            }
            Op::Clone(i) if !guards.is_empty() => {
                let i = i % guards.len();
                // Works open or closed; a named clone keeps the name, new age.
                guards.push(guards[i].clone());
                let name = reference.live[i].1.clone();
                reference.born(name);
            }
            Op::Drop(i) if !guards.is_empty() => {
                let i = i % guards.len();
                drop(guards.remove(i));
                reference.live.remove(i);
            }
            Op::Clone(_) | Op::Drop(_) => {}
            Op::Close => {
                prop_assert_eq!(group.close(), !reference.closed);
                reference.closed = true;
            }
            Op::PollWait => {
                let w = wait.get_or_insert_with(|| Box::pin(group.wait()));
                reference.closed = true;
                let ready = block_on(poll_once(w.as_mut())).is_some();
                prop_assert_eq!(ready, reference.live.is_empty());
                if ready {
                    wait = None;
                }
            }
            Op::CancelWait => wait = None,
            Op::Stragglers => {
                let report = group.stragglers();
                prop_assert_eq!(report.count(), reference.live.len());
                prop_assert_eq!(report.names(), reference.names());
                let ages: Vec<_> = report.named().iter().map(|s| s.age()).collect();
                prop_assert!(ages.windows(2).all(|w| w[0] >= w[1]), "oldest first");
            }
        }
        prop_assert_eq!(group.len(), reference.live.len());
        prop_assert_eq!(group.is_closed(), reference.closed);
    }
    // Whatever happened, dropping the rest drains the group.
    drop(guards);
    block_on(group.wait());
    prop_assert!(group.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn group_matches_the_reference_after_every_step(ops in proptest::collection::vec(op(), 0..60)) {
        run(ops)?;
    }
}
