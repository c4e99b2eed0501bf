//! Connections for single statements, taken back without a round trip (docs/storage.md,
//! "Single statements").
//!
//! The pool tests every connection it takes back with a ping (a round trip to the
//! database, on a task of its own), because a connection may come back from a statement
//! that was cancelled halfway. A statement run by `on_pool!` that completed left its
//! connection idle and in no transaction, so the lane keeps such connections, most
//! recently used first, and lends them to the next single statements untested; anything
//! else goes back through the pool as before: a statement that failed or was cancelled
//! (its connection is dropped, so the pool tests it), a connection idle in the lane for
//! longer than the dialect's limit (the pool's own idle rule would ping it), and one that
//! has gone round the lane for longer than `ROUND`, so that the pool's lifetime and idle
//! limits still apply to every connection. While anyone waits for the pool (`Waiting`), a
//! completed statement's connection goes to the pool too, so that no one waits for a
//! connection that the lane keeps idle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Database, Pool};

/// How long a connection may go round the lane before it goes back through the pool.
const ROUND: Duration = Duration::from_secs(60);

/// A connection idle in the lane: since when it went round it, and since when it is idle.
struct Idle<DB: Database> {
    connection: PoolConnection<DB>,
    taken: Instant,
    returned: Instant,
}

/// The lane of one pool; `room` connections at most, none when `idle_limit` is `None`.
pub(crate) struct Lane<DB: Database> {
    idle: Mutex<Vec<Idle<DB>>>,
    room: usize,
    idle_limit: Duration,
    /// How many wait for a connection of the pool.
    waiting: AtomicUsize,
}

/// Someone waiting for a connection of the pool, until dropped.
pub(crate) struct Waiting<'a> {
    count: &'a AtomicUsize,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A connection lent for one statement: `done` gives it back to the lane once the
/// statement completed; dropped instead, it goes back through the pool, which tests it.
pub(crate) struct Lent<'a, DB: Database> {
    connection: PoolConnection<DB>,
    taken: Instant,
    lane: &'a Lane<DB>,
}

impl<DB: Database> Lane<DB> {
    /// A lane for `pool`: it keeps at most three quarters of the pool's connections, so
    /// that transactions always find some in the pool. `idle_limit` is how long a
    /// connection may wait in the lane and still be lent untested; `None`: no lane.
    pub(crate) fn new(pool: &Pool<DB>, idle_limit: Option<Duration>) -> Self {
        let max = usize::try_from(pool.options().get_max_connections()).unwrap_or(usize::MAX);
        let room = match idle_limit {
            Some(_) => max - (max / 4).max(1).min(max),
            None => 0,
        };
        Self {
            idle: Mutex::new(Vec::with_capacity(room)),
            room,
            idle_limit: idle_limit.unwrap_or_default(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The most recently returned connection still fresh enough, or one of the pool's.
    pub(crate) async fn lend(&self, pool: &Pool<DB>) -> Result<Lent<'_, DB>, sqlx::Error> {
        if pool.is_closed() {
            // A statement that completed while the pool closed may have left one here.
            self.drain();
        } else if self.room > 0 {
            let now = Instant::now();
            let (fresh, stale) = {
                let mut idle = self.lock();
                match idle.last() {
                    Some(last) if now.duration_since(last.returned) < self.idle_limit => {
                        (idle.pop(), Vec::new())
                    }
                    // The newest has waited too long, so have all the others.
                    _ => (None, std::mem::take(&mut *idle)),
                }
            };
            // Back through the pool (outside the lock: each drop spawns the pool's test).
            drop(stale);
            if let Some(Idle {
                connection, taken, ..
            }) = fresh
            {
                return Ok(Lent {
                    connection,
                    taken,
                    lane: self,
                });
            }
        }
        let waiting = self.waiting();
        let connection = pool.acquire().await?;
        drop(waiting);
        Ok(Lent {
            connection,
            taken: Instant::now(),
            lane: self,
        })
    }

    /// Counts the caller among those waiting for the pool until the guard is dropped, and
    /// gives one idle connection back to the pool if the pool has none left to hand out:
    /// for a transaction or a long statement about to take a connection of the pool.
    pub(crate) fn wait_for(&self, pool: &Pool<DB>) -> Waiting<'_> {
        let waiting = self.waiting();
        self.make_room(pool);
        waiting
    }

    fn waiting(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        Waiting {
            count: &self.waiting,
        }
    }

    fn make_room(&self, pool: &Pool<DB>) {
        let max = pool.options().get_max_connections();
        if self.room > 0 && pool.num_idle() == 0 && pool.size() >= max {
            let oldest = {
                let mut idle = self.lock();
                if idle.is_empty() {
                    None
                } else {
                    Some(idle.remove(0))
                }
            };
            drop(oldest);
        }
    }

    /// How many connections wait in the lane.
    pub(crate) fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Gives every idle connection back to the pool (before it closes).
    pub(crate) fn drain(&self) {
        let idle = std::mem::take(&mut *self.lock());
        drop(idle);
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Idle<DB>>> {
        // Nothing panics while holding it; a poisoned list is still a list of connections.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<DB: Database> Drop for Lane<DB> {
    /// The last storage is gone, maybe after its runtime: the idle connections are closed
    /// here rather than handed to the pool, whose test needs a runtime to run on.
    fn drop(&mut self) {
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(PoisonError::into_inner));
        for Idle { connection, .. } in idle {
            drop(connection.detach());
        }
    }
}

impl<DB: Database> Lent<'_, DB> {
    /// The statement completed: the connection waits in the lane for the next one, or
    /// goes back through the pool when the lane is full, when someone waits for the pool,
    /// or when the connection went round the lane for `ROUND` already.
    pub(crate) fn done(self) {
        let Self {
            connection,
            taken,
            lane,
        } = self;
        if lane.room == 0 || lane.waiting.load(Ordering::SeqCst) > 0 || taken.elapsed() >= ROUND {
            return;
        }
        let overflow = {
            let mut idle = lane.lock();
            if idle.len() < lane.room {
                idle.push(Idle {
                    connection,
                    taken,
                    returned: Instant::now(),
                });
                None
            } else {
                Some(connection)
            }
        };
        drop(overflow);
    }
}

impl<DB: Database> std::ops::Deref for Lent<'_, DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &Self::Target {
        &self.connection
    }
}

impl<DB: Database> std::ops::DerefMut for Lent<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
    use sqlx::{Executor as _, Sqlite};

    const LIMIT: Option<Duration> = Some(Duration::from_secs(1));

    /// An in-memory database per connection: a temporary table marks a connection.
    async fn pool(max: u32) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_millis(500))
            .connect("sqlite::memory:")
            .await
            .expect("an in-memory pool")
    }

    async fn marked(connection: &mut sqlx::SqliteConnection) -> bool {
        connection.execute("select * from mark").await.is_ok()
    }

    #[tokio::test]
    async fn a_completed_statements_connection_is_lent_again_without_the_pool() {
        let pool = pool(4).await;
        let lane = Lane::<Sqlite>::new(&pool, LIMIT);
        let mut lent = lane.lend(&pool).await.expect("lent");
        lent.execute("create temp table mark (x)")
            .await
            .expect("marked");
        lent.done();
        assert_eq!(lane.idle(), 1);
        assert_eq!(pool.num_idle(), 0, "the pool did not take it back");

        let mut again = lane.lend(&pool).await.expect("lent");
        assert!(marked(&mut again).await, "the same connection");
        assert_eq!(lane.idle(), 0);
        again.done();
    }

    #[tokio::test]
    async fn a_connection_not_given_back_returns_through_the_pool() {
        let pool = pool(4).await;
        let lane = Lane::<Sqlite>::new(&pool, LIMIT);
        let mut lent = lane.lend(&pool).await.expect("lent");
        lent.execute("select 1").await.expect("ran");
        // A failed or cancelled statement: the guard is dropped, not `done`.
        drop(lent);
        assert_eq!(lane.idle(), 0);
        for _ in 0..100 {
            if pool.num_idle() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(pool.num_idle(), 1, "the pool tested and took it back");
    }

    #[tokio::test]
    async fn a_connection_idle_in_the_lane_for_too_long_goes_back_through_the_pool() {
        let pool = pool(4).await;
        let lane = Lane::<Sqlite>::new(&pool, Some(Duration::from_millis(50)));
        let mut lent = lane.lend(&pool).await.expect("lent");
        lent.execute("create temp table mark (x)")
            .await
            .expect("marked");
        lent.done();
        tokio::time::sleep(Duration::from_millis(80)).await;

        let mut next = lane.lend(&pool).await.expect("lent");
        assert_eq!(lane.idle(), 0, "the stale one left the lane");
        // The pool may hand the same connection out again once it tested it; either way
        // it came from the pool, so the lane kept nothing.
        next.execute("select 1").await.expect("ran");
        next.done();
        assert_eq!(lane.idle(), 1);
    }

    #[tokio::test]
    async fn the_lane_keeps_three_quarters_of_the_pool_at_most() {
        let pool = pool(4).await;
        let lane = Lane::<Sqlite>::new(&pool, LIMIT);
        let mut all = Vec::new();
        for _ in 0..4 {
            all.push(lane.lend(&pool).await.expect("lent"));
        }
        for lent in all {
            lent.done();
        }
        assert_eq!(lane.idle(), 3);
        assert_eq!(
            Lane::<Sqlite>::new(&pool, None).room,
            0,
            "no limit, no lane"
        );
        let single = self::pool(1).await;
        assert_eq!(Lane::<Sqlite>::new(&single, LIMIT).room, 0, "a pool of one");
    }

    #[tokio::test]
    async fn one_waiting_for_the_pool_gets_a_connection_the_lane_kept() {
        let pool = pool(2).await;
        let lane = Lane::<Sqlite>::new(&pool, LIMIT);
        let first = lane.lend(&pool).await.expect("lent");
        first.done();
        assert_eq!(lane.idle(), 1);
        let held = pool.acquire().await.expect("the pool's second");
        assert_eq!(pool.size(), 2);

        // A transaction: the pool is exhausted, so the lane gives its idle one back.
        let waiting = lane.wait_for(&pool);
        let taken = pool.acquire().await.expect("not starved by the lane");
        assert_eq!(lane.idle(), 0);

        // While someone waits, a completed statement's connection goes to the pool.
        let lent = lane.lend(&pool);
        drop(taken);
        let lent = lent.await.expect("lent");
        lent.done();
        assert_eq!(lane.idle(), 0, "given to the pool while one waits");
        drop(waiting);
        drop(held);
    }
}
