//! How the processor hands a lane the replies it claimed in its own transaction.
//!
//! Without it, a missed call's reply passes through three writer transactions after the
//! acknowledgement: the processor's decision, the lane's claim, the attempt's start. Under a
//! burst each waits for the group commit ahead of it. With it, the processor reserves room in
//! a running lane's queue, claims that many due rows in the transaction that decides the
//! calls ([`EventStore::apply_and_claim`](crate::store::EventStore::apply_and_claim)), and
//! passes them straight to the lane: the claim costs no transaction of its own. The same
//! transaction records the start of as many as the lane would start ahead of its pacing
//! anyway (its start window, see `Lane::start_ahead`), so those go out without waiting for
//! the lane's start commit. What a crash leaves is unchanged: at most the lane's start window
//! becomes `uncertain`, and claimed rows whose start was never recorded go back to the queue.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc::{self, OwnedPermit};

use crate::cluster::Node;
use crate::store::{ClaimRequest, ClaimedSend};
use crate::time::now_ms;

/// A claimed send as it enters a lane's queue, and whether its start is already recorded.
pub type Handed = (ClaimedSend, bool);

/// One lane's door: open while the lane runs.
#[derive(Default)]
pub struct Door {
    queue: Mutex<Option<(mpsc::Sender<Handed>, Node)>>,
    /// How many more starts the lane would record ahead of its pacing right now.
    start_room: AtomicUsize,
}

impl Door {
    /// Called by the lane when it starts: sends may be handed to `queue`, leased to `node`.
    pub fn open(&self, queue: mpsc::Sender<Handed>, node: Node) {
        *self.queue.lock().expect("door lock") = Some((queue, node));
    }

    /// Called by the lane when it stops.
    pub fn close(&self) {
        *self.queue.lock().expect("door lock") = None;
        self.start_room.store(0, Ordering::Relaxed);
    }

    /// Called by the lane as its pacing loop turns: it would start `room` more sends ahead.
    pub fn set_start_room(&self, room: usize) {
        self.start_room.store(room, Ordering::Relaxed);
    }

    /// Reserves room for up to `want` sends of `sender_id` in the lane's queue; `None` when the
    /// lane is not running or its queue is full (its own claimer then picks the rows up).
    pub fn reserve(&self, sender_id: &str, want: usize) -> Option<Handoff> {
        let (queue, node) = self.queue.lock().expect("door lock").clone()?;
        let mut permits = Vec::new();
        while permits.len() < want {
            match queue.clone().try_reserve_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        if permits.is_empty() {
            return None;
        }
        // Taken, so two batches before the lane's next turn do not both use it.
        let start = self
            .start_room
            .swap(0, Ordering::Relaxed)
            .min(permits.len());
        let now = now_ms();
        Some(Handoff {
            request: ClaimRequest {
                sender_id: sender_id.to_string(),
                limit: permits.len() as u32,
                start: start as u32,
                node: node.id.to_string(),
                lease_until: node.send_lease_until(now),
            },
            permits,
        })
    }
}

/// Room reserved in one lane's queue, and the claim that fills it.
pub struct Handoff {
    pub request: ClaimRequest,
    permits: Vec<OwnedPermit<Handed>>,
}

impl Handoff {
    /// Passes the sends claimed for this lane (after the commit) into its queue. Room left
    /// over is released when the handoff is dropped.
    pub fn deliver(mut self, claimed: impl IntoIterator<Item = Handed>) {
        for (send, started) in claimed {
            match self.permits.pop() {
                Some(permit) => {
                    permit.send((send, started));
                }
                // Never more than reserved: the claim's limit is the number of permits. Should
                // it happen, the row stays claimed and is queued again by the restart rules.
                None => tracing::error!(
                    message_id = %send.message_id,
                    "A send was claimed for a lane with no room for it."
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(id: &str) -> ClaimedSend {
        ClaimedSend {
            message_id: id.into(),
            sender_id: "s".into(),
            to: "+1".into(),
            body: "{}".into(),
            attempt_no: 1,
            claimed_by: "n".into(),
        }
    }

    #[tokio::test]
    async fn a_closed_door_or_a_full_queue_reserves_nothing_and_room_is_released_on_drop() {
        let door = Door::default();
        assert!(door.reserve("s", 4).is_none(), "no lane running");
        let (tx, mut rx) = mpsc::channel(3);
        let node = Node {
            id: "n".into(),
            started_at: 0,
            address: String::new(),
            lease: std::time::Duration::from_secs(15),
            send_lease: std::time::Duration::from_secs(60),
            poll: std::time::Duration::from_secs(1),
        };
        door.open(tx, node);
        door.set_start_room(2);
        let h = door.reserve("s", 5).expect("room");
        assert_eq!(h.request.limit, 3, "no more than the queue holds");
        assert_eq!(h.request.start, 2, "no more starts than the lane's window");
        assert_eq!(h.request.node, "n");
        assert!(door.reserve("s", 1).is_none(), "the queue is reserved");
        h.deliver([(send("a"), true), (send("b"), false)]);
        let (a, started) = rx.recv().await.expect("a");
        assert_eq!((a.message_id.as_str(), started), ("a", true));
        let (b, started) = rx.recv().await.expect("b");
        assert_eq!((b.message_id.as_str(), started), ("b", false));
        let again = door.reserve("s", 9).expect("the unused room came back");
        assert_eq!(again.request.limit, 3);
        assert_eq!(
            again.request.start, 0,
            "the start room was taken by the first batch"
        );
        drop(again);
        door.close();
        assert!(door.reserve("s", 1).is_none(), "closed");
    }
}
