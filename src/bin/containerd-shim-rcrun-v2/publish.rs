//! Events to containerd, in the order they happened: the task service and
//! the exit thread queue them (under the lock that orders them), and one
//! thread forwards them, so that no request waits on containerd.

use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::Duration;

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;

/// How long without an event before the shim counts as idle.
const SETTLED: Duration = Duration::from_millis(500);

/// The queue of events to forward. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<Option<(&'static str, Box<dyn MessageDyn>)>>,
}

impl Publisher {
    /// Starts the forwarding thread for containerd's namespace `ns`.
    pub fn start(remote: RemotePublisher, ns: &str) -> Publisher {
        let (tx, rx) = channel::<Option<(&'static str, Box<dyn MessageDyn>)>>();
        let ns = ns.to_string();
        std::thread::Builder::new()
            .name("publish".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                // Every request queues an event or a touch; once none
                // came for a moment, the work is done: the shim drops its
                // start-up and request pages (crate::memory).
                let mut busy = true;
                loop {
                    let next = if busy {
                        rx.recv_timeout(SETTLED)
                    } else {
                        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
                    };
                    match next {
                        Ok(Some((topic, event))) => {
                            if let Err(e) = remote.publish(Context::default(), topic, &ns, event) {
                                log::error!("publishing {topic}: {e}");
                            }
                            busy = true;
                        }
                        Ok(None) => busy = true,
                        Err(RecvTimeoutError::Timeout) => {
                            crate::memory::release_clean_exe_pages();
                            busy = false;
                        }
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                }
            })
            .expect("spawning the event thread");
        Publisher { tx }
    }

    /// Queues `event` on `topic` (containerd's `/tasks/...`).
    pub fn send(&self, topic: &'static str, event: impl MessageDyn) {
        // The thread lives as long as the process; a send cannot fail.
        let _ = self.tx.send(Some((topic, Box::new(event))));
    }

    /// Marks the shim busy (a request without an event): its pages are
    /// given back once it is idle again.
    pub fn touch(&self) {
        let _ = self.tx.send(None);
    }
}
