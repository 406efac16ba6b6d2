//! Storage for the connection that works with and without a heap.
//!
//! With `alloc` the containers grow on demand (every use is still bounded by a
//! configured limit) and frames are shared `Bytes`. Without `alloc` every container
//! has a fixed capacity from [`capacity`](crate::conn::capacity) and frames are spans
//! of the receive buffer. Both variants offer the same methods, so the protocol logic
//! is written once.

use crate::time::Instant;

#[cfg(feature = "alloc")]
mod imp {
    use super::Instant;
    use alloc::collections::{BTreeMap, BTreeSet, VecDeque};
    use alloc::vec::Vec;

    /// Id-keyed table.
    #[derive(Debug)]
    pub(crate) struct Map<V>(BTreeMap<u64, V>);

    impl<V> Map<V> {
        pub(crate) fn new() -> Self {
            Map(BTreeMap::new())
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        /// Inserts; `Err` only when a fixed capacity is full (never with a heap).
        pub(crate) fn insert(&mut self, k: u64, v: V) -> Result<(), V> {
            self.0.insert(k, v);
            Ok(())
        }
        pub(crate) fn get(&self, k: u64) -> Option<&V> {
            self.0.get(&k)
        }
        pub(crate) fn get_mut(&mut self, k: u64) -> Option<&mut V> {
            self.0.get_mut(&k)
        }
        pub(crate) fn remove(&mut self, k: u64) -> Option<V> {
            self.0.remove(&k)
        }
        pub(crate) fn contains(&self, k: u64) -> bool {
            self.0.contains_key(&k)
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        /// Keys above `k`, ascending.
        pub(crate) fn keys_above(&self, k: u64) -> Vec<u64> {
            self.0
                .range(k.saturating_add(1)..)
                .map(|(&id, _)| id)
                .filter(|&id| id > k)
                .collect()
        }
    }

    /// Deadlines ordered by time.
    #[derive(Debug)]
    pub(crate) struct Deadlines(BTreeSet<(Instant, u64)>);

    impl Deadlines {
        pub(crate) fn new() -> Self {
            Deadlines(BTreeSet::new())
        }
        pub(crate) fn insert(&mut self, t: Instant, id: u64) {
            self.0.insert((t, id));
        }
        pub(crate) fn remove(&mut self, t: Instant, id: u64) {
            self.0.remove(&(t, id));
        }
        pub(crate) fn first(&self) -> Option<(Instant, u64)> {
            self.0.first().copied()
        }
        pub(crate) fn pop_first(&mut self) -> Option<(Instant, u64)> {
            self.0.pop_first()
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
    }

    /// FIFO queue.
    #[derive(Debug)]
    pub(crate) struct Queue<T>(VecDeque<T>);

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Queue(VecDeque::new())
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn push_back(&mut self, t: T) -> Result<(), T> {
            self.0.push_back(t);
            Ok(())
        }
        pub(crate) fn pop_front(&mut self) -> Option<T> {
            self.0.pop_front()
        }
    }

    /// Growable byte buffer for queued frames.
    #[derive(Debug, Default)]
    pub(crate) struct ByteVec(Vec<u8>);

    impl ByteVec {
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        /// Appends `n` zero bytes, returning the new tail to fill.
        pub(crate) fn grow(&mut self, n: usize) -> Option<&mut [u8]> {
            let start = self.0.len();
            self.0.resize(start + n, 0);
            Some(&mut self.0[start..])
        }
        pub(crate) fn as_slice(&self) -> &[u8] {
            &self.0
        }
        pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
            &mut self.0
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        pub(crate) fn drain_front(&mut self, n: usize) {
            self.0.drain(..n);
        }
    }
}

#[cfg(not(feature = "alloc"))]
mod imp {
    use super::Instant;
    use crate::conn::capacity;

    /// Id-keyed table with a fixed capacity.
    #[derive(Debug)]
    pub(crate) struct Map<V>(heapless::Vec<(u64, V), { capacity::TABLE }>);

    impl<V> Map<V> {
        pub(crate) fn new() -> Self {
            Map(heapless::Vec::new())
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn insert(&mut self, k: u64, v: V) -> Result<(), V> {
            if let Some(e) = self.0.iter_mut().find(|e| e.0 == k) {
                e.1 = v;
                return Ok(());
            }
            self.0.push((k, v)).map_err(|(_, v)| v)
        }
        pub(crate) fn get(&self, k: u64) -> Option<&V> {
            self.0.iter().find(|e| e.0 == k).map(|e| &e.1)
        }
        pub(crate) fn get_mut(&mut self, k: u64) -> Option<&mut V> {
            self.0.iter_mut().find(|e| e.0 == k).map(|e| &mut e.1)
        }
        pub(crate) fn remove(&mut self, k: u64) -> Option<V> {
            let i = self.0.iter().position(|e| e.0 == k)?;
            Some(self.0.swap_remove(i).1)
        }
        pub(crate) fn contains(&self, k: u64) -> bool {
            self.0.iter().any(|e| e.0 == k)
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        pub(crate) fn keys_above(&self, k: u64) -> heapless::Vec<u64, { capacity::TABLE }> {
            let mut v: heapless::Vec<u64, { capacity::TABLE }> =
                self.0.iter().map(|e| e.0).filter(|&id| id > k).collect();
            v.sort_unstable();
            v
        }
    }

    /// Deadlines ordered by time, fixed capacity.
    #[derive(Debug)]
    pub(crate) struct Deadlines(heapless::Vec<(Instant, u64), { capacity::TABLE }>);

    impl Deadlines {
        pub(crate) fn new() -> Self {
            Deadlines(heapless::Vec::new())
        }
        /// Callers insert at most one deadline per table entry, so this fits.
        pub(crate) fn insert(&mut self, t: Instant, id: u64) {
            let at = self.0.partition_point(|&e| e < (t, id));
            let _ = self.0.insert(at, (t, id));
        }
        pub(crate) fn remove(&mut self, t: Instant, id: u64) {
            if let Some(i) = self.0.iter().position(|&e| e == (t, id)) {
                self.0.remove(i);
            }
        }
        pub(crate) fn first(&self) -> Option<(Instant, u64)> {
            self.0.first().copied()
        }
        pub(crate) fn pop_first(&mut self) -> Option<(Instant, u64)> {
            if self.0.is_empty() {
                None
            } else {
                Some(self.0.remove(0))
            }
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
    }

    /// FIFO queue with a fixed capacity.
    #[derive(Debug)]
    pub(crate) struct Queue<T>(heapless::Deque<T, { capacity::EVENTS }>);

    impl<T> Queue<T> {
        pub(crate) fn new() -> Self {
            Queue(heapless::Deque::new())
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn push_back(&mut self, t: T) -> Result<(), T> {
            self.0.push_back(t)
        }
        pub(crate) fn pop_front(&mut self) -> Option<T> {
            self.0.pop_front()
        }
    }

    /// Byte buffer for queued frames, fixed capacity.
    #[derive(Debug, Default)]
    pub(crate) struct ByteVec(heapless::Vec<u8, { capacity::TX }>);

    impl ByteVec {
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn grow(&mut self, n: usize) -> Option<&mut [u8]> {
            let start = self.0.len();
            self.0.resize(start + n, 0).ok()?;
            Some(&mut self.0[start..])
        }
        pub(crate) fn as_slice(&self) -> &[u8] {
            &self.0
        }
        pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
            &mut self.0
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        pub(crate) fn drain_front(&mut self, n: usize) {
            let len = self.0.len();
            self.0.copy_within(n..len, 0);
            self.0.truncate(len - n);
        }
    }
}

pub(crate) use imp::{ByteVec, Deadlines, Map, Queue};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_deadlines_queue_bytes() {
        let mut m: Map<u32> = Map::new();
        m.insert(5, 50).unwrap();
        m.insert(2, 20).unwrap();
        m.insert(9, 90).unwrap();
        assert_eq!(m.get(2), Some(&20));
        assert_eq!(&m.keys_above(2)[..], &[5, 9]);
        assert_eq!(m.remove(5), Some(50));
        assert!(!m.contains(5) && m.len() == 2);
        let mut d = Deadlines::new();
        d.insert(Instant::from_millis(3), 1);
        d.insert(Instant::from_millis(1), 2);
        d.insert(Instant::from_millis(2), 3);
        d.remove(Instant::from_millis(2), 3);
        assert_eq!(d.pop_first(), Some((Instant::from_millis(1), 2)));
        assert_eq!(d.first(), Some((Instant::from_millis(3), 1)));
        let mut q: Queue<u8> = Queue::new();
        q.push_back(1).unwrap();
        q.push_back(2).unwrap();
        assert_eq!((q.pop_front(), q.len()), (Some(1), 1));
        let mut b = ByteVec::default();
        b.grow(3).unwrap().copy_from_slice(&[1, 2, 3]);
        b.drain_front(1);
        assert_eq!(b.as_slice(), &[2, 3]);
    }
}
