//! Events to containerd, in the order they happened: the task service and
//! the exit thread queue them (under the lock that orders them), and one
//! thread forwards them, so that no request waits on containerd.

use std::sync::mpsc::{channel, Sender};

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;

/// The queue of events to forward. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: Sender<(&'static str, Box<dyn MessageDyn>)>,
}

impl Publisher {
    /// Starts the forwarding thread for containerd's namespace `ns`.
    pub fn start(remote: RemotePublisher, ns: &str) -> Publisher {
        let (tx, rx) = channel::<(&'static str, Box<dyn MessageDyn>)>();
        let ns = ns.to_string();
        std::thread::Builder::new()
            .name("publish".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                for (topic, event) in rx {
                    if let Err(e) = remote.publish(Context::default(), topic, &ns, event) {
                        log::error!("publishing {topic}: {e}");
                    }
                }
            })
            .expect("spawning the event thread");
        Publisher { tx }
    }

    /// Queues `event` on `topic` (containerd's `/tasks/...`).
    pub fn send(&self, topic: &'static str, event: impl MessageDyn) {
        // The thread lives as long as the process; a send cannot fail.
        let _ = self.tx.send((topic, Box::new(event)));
    }
}
