//! A small multi-future executor on a fixed pool of threads.

use crate::lock;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

struct Task {
    id: u64,
    future: Mutex<Option<BoxFuture>>,
    /// In the run queue (or about to be): wakes in between add nothing.
    queued: AtomicBool,
    exec: Weak<Inner>,
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(inner) = self.exec.upgrade() {
            inner.schedule(self.clone());
        }
    }
}

struct RunQueue {
    tasks: VecDeque<Arc<Task>>,
    stopped: bool,
}

struct Inner {
    run: Mutex<RunQueue>,
    ready: Condvar,
    /// Every unfinished task, so that shutdown can drop them all.
    live: Mutex<HashMap<u64, Arc<Task>>>,
    next: AtomicU64,
}

impl Inner {
    fn schedule(&self, task: Arc<Task>) {
        let mut q = lock(&self.run);
        if q.stopped {
            return;
        }
        q.tasks.push_back(task);
        drop(q);
        self.ready.notify_one();
    }

    fn next_task(&self) -> Option<Arc<Task>> {
        let mut q = lock(&self.run);
        loop {
            if q.stopped {
                return None;
            }
            if let Some(t) = q.tasks.pop_front() {
                return Some(t);
            }
            q = self.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn work(self: Arc<Self>) {
        while let Some(task) = self.next_task() {
            task.queued.store(false, Ordering::Release);
            let waker = Waker::from(task.clone());
            let mut cx = Context::from_waker(&waker);
            let done = {
                let mut slot = lock(&task.future);
                match slot.as_mut() {
                    None => false,
                    Some(f) => {
                        // A panicking task ends; the worker goes on.
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            f.as_mut().poll(&mut cx)
                        }));
                        !matches!(r, Ok(Poll::Pending))
                    }
                }
            };
            if done {
                let f = lock(&task.future).take();
                lock(&self.live).remove(&task.id);
                drop(f);
            }
        }
    }
}

/// A small executor: futures polled on a fixed pool of threads, each woken task
/// re-queued by its waker (no busy polling). It runs the per-connection futures of
/// a blocking server ([`Server::serve_with`](crate::Server::serve_with)) and works
/// with any future, including the [`Handle`](weft_core::driver::Handle) futures.
///
/// A task that blocks (a blocking weft-mio call, a long computation) holds one
/// worker thread meanwhile. Dropping the executor is [`shutdown`](Self::shutdown).
pub struct Executor {
    inner: Arc<Inner>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("tasks", &self.tasks())
            .finish_non_exhaustive()
    }
}

impl Executor {
    /// Starts `threads` worker threads (at least one), named `weft-mio-worker`.
    pub fn new(threads: usize) -> io::Result<Executor> {
        let inner = Arc::new(Inner {
            run: Mutex::new(RunQueue {
                tasks: VecDeque::new(),
                stopped: false,
            }),
            ready: Condvar::new(),
            live: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
        });
        let exec = Executor {
            inner,
            workers: Mutex::new(Vec::new()),
        };
        for _ in 0..threads.max(1) {
            let inner = exec.inner.clone();
            let t = std::thread::Builder::new()
                .name("weft-mio-worker".into())
                .spawn(move || inner.work())?;
            lock(&exec.workers).push(t);
        }
        Ok(exec)
    }

    /// Runs `future` to completion on the pool. After shutdown it is dropped.
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let task = Arc::new(Task {
            id,
            future: Mutex::new(Some(Box::pin(future))),
            queued: AtomicBool::new(true),
            exec: Arc::downgrade(&self.inner),
        });
        if lock(&self.inner.run).stopped {
            return;
        }
        lock(&self.inner.live).insert(id, task.clone());
        self.inner.schedule(task);
    }

    /// Tasks spawned and not finished.
    pub fn tasks(&self) -> usize {
        lock(&self.inner.live).len()
    }

    /// Stops the workers (after the polls in progress), joins them, and drops every
    /// unfinished task.
    pub fn shutdown(&self) {
        let queued = {
            let mut q = lock(&self.inner.run);
            q.stopped = true;
            std::mem::take(&mut q.tasks)
        };
        drop(queued);
        self.inner.ready.notify_all();
        let me = std::thread::current().id();
        let workers = std::mem::take(&mut *lock(&self.workers));
        for w in workers {
            if w.thread().id() != me {
                let _ = w.join();
            }
        }
        let live: Vec<Arc<Task>> = lock(&self.inner.live).drain().map(|(_, t)| t).collect();
        for t in live {
            // Only a task calling shutdown from its own poll is locked here: it ends
            // with its worker.
            let f = match t.future.try_lock() {
                Ok(mut g) => g.take(),
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner().take(),
                Err(std::sync::TryLockError::WouldBlock) => None,
            };
            drop(f);
        }
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
    }
}
