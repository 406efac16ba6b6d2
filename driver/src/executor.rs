//! A small thread-pool executor for per-connection application futures, shared by
//! the blocking adapters (mio, io_uring), which have no runtime of their own.
//!
//! A task is polled by one worker at a time; its waker re-queues it (once, however
//! often it is woken), and a wake-up that arrives while the task is being polled
//! makes the worker poll it again. Idle workers sleep on a condition variable.
//! A panicking task is dropped like a finished one; its worker goes on.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::MutexGuard;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Wake, Waker};
use std::thread::JoinHandle;
use std::vec::Vec;
use std::{boxed::Box, format};

/// std's lock, recovering from poisoning (a panicking task is caught anyway).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
/// Woken while running: poll again.
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

struct Task {
    id: u64,
    fut: Mutex<Option<BoxFuture>>,
    state: AtomicU8,
    pool: Weak<Pool>,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Arc<Task>>,
    stop: bool,
}

#[derive(Default)]
struct Pool {
    queue: Mutex<Queue>,
    cv: Condvar,
    /// Every live task, so that stopping can drop their futures (which breaks the
    /// cycles task → future → connection → waker → task).
    tasks: Mutex<HashMap<u64, Arc<Task>>>,
    next: Mutex<u64>,
}

impl Pool {
    fn schedule(&self, t: Arc<Task>) {
        let mut q = lock(&self.queue);
        if q.stop {
            return;
        }
        q.ready.push_back(t);
        drop(q);
        self.cv.notify_one();
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let next = match s {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => return,
            };
            match self
                .state
                .compare_exchange(s, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if next == SCHEDULED {
                        if let Some(p) = self.pool.upgrade() {
                            p.schedule(self.clone());
                        }
                    }
                    return;
                }
                Err(now) => s = now,
            }
        }
    }
}

fn run_task(pool: &Pool, task: Arc<Task>) {
    let waker = Waker::from(task.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        task.state.store(RUNNING, Ordering::Release);
        let finished = {
            let mut slot = lock(&task.fut);
            match slot.as_mut() {
                None => true,
                Some(f) => {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        f.as_mut().poll(&mut cx)
                    }));
                    // A panicking task is dropped like a finished one.
                    matches!(r, Ok(Poll::Ready(())) | Err(_))
                }
            }
        };
        if finished {
            task.state.store(DONE, Ordering::Release);
            let f = lock(&task.fut).take();
            drop(f);
            lock(&pool.tasks).remove(&task.id);
            return;
        }
        match task
            .state
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => return,
            // Woken while polling: poll again.
            Err(_) => continue,
        }
    }
}

/// A pool of worker threads running `Send` futures, such as each accepted
/// connection's application. Dropping it stops the workers and drops every
/// unfinished task.
pub struct Executor {
    pool: Arc<Pool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl core::fmt::Debug for Executor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.tasks())
            .finish_non_exhaustive()
    }
}

/// Spawns onto an [`Executor`] from anywhere (for example a server's
/// per-connection callback). Spawning after the executor stopped drops the future.
#[derive(Clone)]
pub struct Spawner {
    pool: Weak<Pool>,
}

impl core::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

impl Spawner {
    /// Runs `fut` on the executor's workers.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        if lock(&pool.queue).stop {
            return;
        }
        let id = {
            let mut n = lock(&pool.next);
            *n += 1;
            *n
        };
        let task = Arc::new(Task {
            id,
            fut: Mutex::new(Some(Box::pin(fut))),
            state: AtomicU8::new(SCHEDULED),
            pool: self.pool.clone(),
        });
        lock(&pool.tasks).insert(id, task.clone());
        pool.schedule(task);
    }
}

impl Executor {
    /// Starts `threads` workers (at least one).
    pub fn new(threads: usize) -> io::Result<Executor> {
        let pool = Arc::new(Pool::default());
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let p = pool.clone();
            let h = std::thread::Builder::new()
                .name(format!("weft-worker-{i}"))
                .spawn(move || worker(&p));
            match h {
                Ok(h) => handles.push(h),
                Err(e) => {
                    stop(&pool, handles);
                    return Err(e);
                }
            }
        }
        Ok(Executor {
            pool,
            threads: Mutex::new(handles),
        })
    }

    /// Tasks spawned and not finished.
    pub fn tasks(&self) -> usize {
        lock(&self.pool.tasks).len()
    }

    /// Stops the workers (after the polls in progress), joins them, and drops every
    /// unfinished task. Callable from one of its own tasks (that worker is not
    /// joined; it ends after the poll).
    pub fn shutdown(&self) {
        let threads = core::mem::take(&mut *lock(&self.threads));
        stop(&self.pool, threads);
    }

    /// Runs `fut` on the workers.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.spawner().spawn(fut);
    }

    /// A cloneable, thread-safe way to spawn onto this executor.
    pub fn spawner(&self) -> Spawner {
        Spawner {
            pool: Arc::downgrade(&self.pool),
        }
    }
}

fn worker(pool: &Pool) {
    loop {
        let task = {
            let mut q = lock(&pool.queue);
            loop {
                if q.stop {
                    return;
                }
                if let Some(t) = q.ready.pop_front() {
                    break t;
                }
                q = pool
                    .cv
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        run_task(pool, task);
    }
}

fn stop(pool: &Pool, threads: Vec<JoinHandle<()>>) {
    {
        let mut q = lock(&pool.queue);
        q.stop = true;
        q.ready.clear();
    }
    pool.cv.notify_all();
    let me = std::thread::current().id();
    for t in threads {
        if t.thread().id() != me {
            let _ = t.join();
        }
    }
    // No other worker runs any more: drop every unfinished future (outside the
    // locks). Only a task that called shutdown from its own poll is locked here.
    let tasks: Vec<Arc<Task>> = lock(&pool.tasks).drain().map(|(_, t)| t).collect();
    for t in tasks {
        let f = match t.fut.try_lock() {
            Ok(mut g) => g.take(),
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        drop(f);
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_every_task_and_survives_a_panic() {
        let ex = Executor::new(2).unwrap();
        let (tx, rx) = mpsc::channel();
        ex.spawn(async { panic!("a task panics") });
        for i in 0..100u32 {
            let tx = tx.clone();
            ex.spawn(async move {
                // Yield once through the waker before finishing.
                let mut once = false;
                core::future::poll_fn(|cx| {
                    if once {
                        Poll::Ready(())
                    } else {
                        once = true;
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                })
                .await;
                tx.send(i).unwrap();
            });
        }
        let mut got: Vec<u32> = (0..100)
            .map(|_| rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap())
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shutdown_from_a_task_and_pending_tasks_are_dropped() {
        let ex = Arc::new(Executor::new(1).unwrap());
        let (tx, rx) = mpsc::channel::<()>();
        // A task that never finishes holds a sender: dropping it closes the channel.
        ex.spawn(core::future::pending::<()>().then_drop(tx));
        let e2 = ex.clone();
        ex.spawn(async move { e2.shutdown() });
        // Disconnected, not timed out: shutdown dropped the pending task's future.
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(10)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        assert_eq!(ex.tasks(), 0);
    }

    trait ThenDrop: Sized {
        fn then_drop<T: Send + 'static>(self, t: T) -> Holder<Self, T> {
            Holder(self, t)
        }
    }
    impl<F: Future> ThenDrop for F {}

    /// Keeps `T` alive as long as the future.
    struct Holder<F, T>(F, T);
    impl<F: Future + Unpin, T: Unpin> Future for Holder<F, T> {
        type Output = F::Output;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            Pin::new(&mut self.0).poll(cx)
        }
    }
}
