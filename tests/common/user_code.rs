//! User code that misbehaves, for tests that check the crate isolates it.

use std::fmt;

/// An error whose `Display` panics.
#[derive(Debug)]
pub struct BadDisplay;

impl fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of BadDisplay");
    }
}

impl std::error::Error for BadDisplay {}
