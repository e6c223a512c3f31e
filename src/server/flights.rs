//! Identical queries in flight share one evaluation (docs/http-api.md,
//! rule H44): a dashboard opened by many people, or one panel refreshed by
//! several browsers, asks the same question of the same committed state
//! many times at once. The first request of a kind runs it (the leader);
//! requests that arrive while it runs, for the same text, range and format
//! and the same committed state, wait for its answer instead of running it
//! again. Nothing is kept once the leader has answered: this is not a
//! cache, and a request never gets an answer computed before it arrived
//! on a state older than the one it saw.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What makes two requests the same question: the query's canonical text,
/// its range, everything that shapes the answer's bytes, and the
/// generation of the committed state the request saw on arrival.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FlightKey {
    pub text: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// The answer's format and options, as one word (`json`, `json+chart`,
    /// `csv`, `svg`).
    pub shape: &'static str,
    pub generation: u64,
}

/// A finished answer: its bytes and content type. Only successes are
/// shared; a follower whose leader failed runs the query itself.
pub(crate) type Answer = Arc<(Vec<u8>, &'static str)>;

type Slot = watch::Sender<Option<Answer>>;

/// The questions being answered now.
#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<FlightKey, Arc<Slot>>>,
}

/// What a request is to do.
pub(crate) enum Role {
    /// Run the query, then hand the answer to [`Leader::finish`].
    Leader(Leader),
    /// Wait for the leader's answer ([`Follower::answer`]).
    Follower(Follower),
}

impl Flights {
    /// Joins the flight of `key`, or starts it.
    pub(crate) fn join(self: &Arc<Self>, key: FlightKey) -> Role {
        let mut running = self.lock();
        if let Some(slot) = running.get(&key) {
            return Role::Follower(Follower {
                answers: slot.subscribe(),
            });
        }
        let slot = Arc::new(watch::channel(None).0);
        running.insert(key.clone(), Arc::clone(&slot));
        Role::Leader(Leader {
            flights: Arc::clone(self),
            key,
            slot,
        })
    }

    /// How many questions are in flight (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<FlightKey, Arc<Slot>>> {
        match self.running.lock() {
            Ok(guard) => guard,
            // Every change to the map is one insert or one remove: a panic
            // elsewhere while the lock was held cannot leave it half done.
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The request that runs the query. Dropped without [`finish`] (an error,
/// a client that went away), its flight ends and its followers run the
/// query themselves.
///
/// [`finish`]: Leader::finish
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: FlightKey,
    slot: Arc<Slot>,
}

impl Leader {
    /// Gives the answer to every follower.
    pub(crate) fn finish(self, answer: &Answer) {
        self.slot.send_replace(Some(Arc::clone(answer)));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Later requests start a new flight: they may have seen a newer
        // state, and this one's answer is already out.
        let mut running = self.flights.lock();
        if running
            .get(&self.key)
            .is_some_and(|s| Arc::ptr_eq(s, &self.slot))
        {
            running.remove(&self.key);
        }
    }
}

/// A request waiting for a leader's answer.
pub(crate) struct Follower {
    answers: watch::Receiver<Option<Answer>>,
}

impl Follower {
    /// The leader's answer, or `None` when the leader failed or went away.
    pub(crate) async fn answer(mut self) -> Option<Answer> {
        match self.answers.wait_for(Option::is_some).await {
            Ok(answer) => answer.clone(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str, generation: u64) -> FlightKey {
        FlightKey {
            text: text.to_string(),
            from: None,
            to: None,
            shape: "json",
            generation,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a test runtime")
    }

    #[test]
    fn followers_get_the_leaders_answer() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(leader) = flights.join(key("count(followers)", 7)) else {
            panic!("the first request must lead");
        };
        let Role::Follower(follower) = flights.join(key("count(followers)", 7)) else {
            panic!("the same question must follow");
        };
        let answer: Answer = Arc::new((b"42".to_vec(), "text/csv"));
        leader.finish(&answer);
        let got = runtime().block_on(follower.answer());
        assert_eq!(got.as_deref(), Some(&(b"42".to_vec(), "text/csv")));
        assert_eq!(flights.len(), 0, "a finished flight is forgotten");
    }

    #[test]
    fn another_state_or_text_is_another_question() {
        let flights = Arc::new(Flights::default());
        let _first = flights.join(key("count(followers)", 7));
        assert!(matches!(
            flights.join(key("count(followers)", 8)),
            Role::Leader(_)
        ));
        assert!(matches!(
            flights.join(key("count(following)", 7)),
            Role::Leader(_)
        ));
        let mut csv = key("count(followers)", 7);
        csv.shape = "csv";
        assert!(matches!(flights.join(csv), Role::Leader(_)));
    }

    #[test]
    fn a_failed_leader_leaves_its_followers_to_run_it() {
        let flights = Arc::new(Flights::default());
        let leader = flights.join(key("drop(followers, 5%, 1h)", 1));
        let Role::Follower(follower) = flights.join(key("drop(followers, 5%, 1h)", 1)) else {
            panic!("the same question must follow");
        };
        drop(leader);
        assert_eq!(runtime().block_on(follower.answer()), None);
        assert!(
            matches!(
                flights.join(key("drop(followers, 5%, 1h)", 1)),
                Role::Leader(_)
            ),
            "after a failure the next request leads again"
        );
    }

    #[test]
    fn a_request_after_the_answer_runs_again() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(leader) = flights.join(key("count(followers)", 3)) else {
            panic!("the first request must lead");
        };
        leader.finish(&Arc::new((Vec::new(), "application/json")));
        assert!(matches!(
            flights.join(key("count(followers)", 3)),
            Role::Leader(_)
        ));
    }
}
