//! A stand-in for systemd's notification socket (`NOTIFY_SOCKET`): a Unix datagram
//! socket whose messages a test reads, one by one, each wait bounded.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long [`Manager::expect`] waits for a message.
const STEP: Duration = Duration::from_secs(10);

/// A socket standing in for systemd's notification socket; removed on drop.
pub struct Manager {
    socket: UnixDatagram,
    pub path: PathBuf,
}

impl Manager {
    /// Binds a fresh socket in the temporary directory.
    pub fn bind(test: &str) -> Manager {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        // Relaxed: only makes names unique; nothing else is ordered by it.
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "smol-graceful-{}-{n}-{}.sock",
            std::process::id(),
            &test[..test.len().min(40)]
        ));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notification socket");
        Manager { socket, path }
    }

    /// The next message and when it came, or `None` if none came within `limit`.
    pub fn receive_within(&self, limit: Duration) -> Option<(String, Instant)> {
        self.socket
            .set_read_timeout(Some(limit))
            .expect("set a read timeout");
        let mut buf = [0; 4096];
        match self.socket.recv(&mut buf) {
            Ok(len) => {
                let at = Instant::now();
                let text = String::from_utf8(buf[..len].to_vec()).expect("UTF-8 message");
                // sd_notify(3): newline-separated assignments; one here, with or
                // without a final newline.
                let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                Some((text, at))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("recv on the notification socket: {e}"),
        }
    }

    /// Waits (bounded) for the next message and checks that it is `expected`.
    pub fn expect(&self, expected: &str) -> Instant {
        match self.receive_within(STEP) {
            Some((text, at)) => {
                assert_eq!(text, expected, "expected {expected:?}, got {text:?}");
                at
            }
            None => panic!("no {expected:?} within {STEP:?}"),
        }
    }

    /// The messages already queued, without waiting.
    pub fn queued(&self) -> Vec<String> {
        let mut all = Vec::new();
        while let Some((text, _)) = self.receive_within(Duration::from_millis(1)) {
            all.push(text);
            assert!(all.len() < 10_000, "an endless stream of messages");
        }
        all
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
