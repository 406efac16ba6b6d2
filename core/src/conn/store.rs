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
    use alloc::collections::VecDeque;
    use alloc::vec::Vec;

    /// Id-keyed table, sorted by id. A sorted deque rather than a B-tree: ids are
    /// mostly issued in increasing order and retired oldest first, so inserts go
    /// to the back and removals come from near the front, and a table that
    /// empties and refills keeps its storage (a B-tree frees and allocates a node
    /// each time: four allocations per request/response round trip). Its length is
    /// bounded by a configured limit, which bounds the worst-case shifting too.
    #[derive(Debug)]
    pub(crate) struct Map<V, K = u64>(VecDeque<(K, V)>);

    impl<V, K: Copy + Ord> Map<V, K> {
        pub(crate) fn new() -> Self {
            Map(VecDeque::new())
        }
        fn find(&self, k: K) -> Result<usize, usize> {
            // Most lookups are for the oldest entry.
            match self.0.front() {
                Some(e) if e.0 == k => Ok(0),
                _ => self.0.binary_search_by_key(&k, |e| e.0),
            }
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        /// Inserts; `Err` only when a fixed capacity is full (never with a heap).
        pub(crate) fn insert(&mut self, k: K, v: V) -> Result<(), V> {
            if self.0.back().is_none_or(|e| e.0 < k) {
                self.0.push_back((k, v));
                return Ok(());
            }
            match self.find(k) {
                Ok(i) => self.0[i].1 = v,
                Err(i) => self.0.insert(i, (k, v)),
            }
            Ok(())
        }
        pub(crate) fn get(&self, k: K) -> Option<&V> {
            self.find(k).ok().map(|i| &self.0[i].1)
        }
        pub(crate) fn get_mut(&mut self, k: K) -> Option<&mut V> {
            let i = self.find(k).ok()?;
            Some(&mut self.0[i].1)
        }
        pub(crate) fn remove(&mut self, k: K) -> Option<V> {
            let i = self.find(k).ok()?;
            self.0.remove(i).map(|e| e.1)
        }
        pub(crate) fn contains(&self, k: K) -> bool {
            self.find(k).is_ok()
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        /// Keys above `k`, ascending.
        pub(crate) fn keys_above(&self, k: K) -> Vec<K> {
            let from = self.0.partition_point(|e| e.0 <= k);
            self.0.range(from..).map(|e| e.0).collect()
        }
    }

    /// Deadlines ordered by time (then id), sorted in a deque for the same reason
    /// as [`Map`]: deadlines mostly arrive in increasing order.
    #[derive(Debug)]
    pub(crate) struct Deadlines<K = u64>(VecDeque<(Instant, K)>);

    impl<K: Copy + Ord> Deadlines<K> {
        pub(crate) fn new() -> Self {
            Deadlines(VecDeque::new())
        }
        pub(crate) fn insert(&mut self, t: Instant, id: K) {
            let e = (t, id);
            if self.0.back().is_none_or(|b| *b < e) {
                self.0.push_back(e);
                return;
            }
            if let Err(i) = self.0.binary_search(&e) {
                self.0.insert(i, e);
            }
        }
        pub(crate) fn remove(&mut self, t: Instant, id: K) {
            let e = (t, id);
            if self.0.front() == Some(&e) {
                self.0.pop_front();
            } else if let Ok(i) = self.0.binary_search(&e) {
                self.0.remove(i);
            }
        }
        pub(crate) fn first(&self) -> Option<(Instant, K)> {
            self.0.front().copied()
        }
        pub(crate) fn pop_first(&mut self) -> Option<(Instant, K)> {
            self.0.pop_front()
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
        pub(crate) fn front(&self) -> Option<&T> {
            self.0.front()
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
    pub(crate) struct Map<V, K = u64>(heapless::Vec<(K, V), { capacity::TABLE }>);

    impl<V, K: Copy + Ord> Map<V, K> {
        pub(crate) fn new() -> Self {
            Map(heapless::Vec::new())
        }
        pub(crate) fn len(&self) -> usize {
            self.0.len()
        }
        pub(crate) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
        pub(crate) fn insert(&mut self, k: K, v: V) -> Result<(), V> {
            if let Some(e) = self.0.iter_mut().find(|e| e.0 == k) {
                e.1 = v;
                return Ok(());
            }
            self.0.push((k, v)).map_err(|(_, v)| v)
        }
        pub(crate) fn get(&self, k: K) -> Option<&V> {
            self.0.iter().find(|e| e.0 == k).map(|e| &e.1)
        }
        pub(crate) fn get_mut(&mut self, k: K) -> Option<&mut V> {
            self.0.iter_mut().find(|e| e.0 == k).map(|e| &mut e.1)
        }
        pub(crate) fn remove(&mut self, k: K) -> Option<V> {
            let i = self.0.iter().position(|e| e.0 == k)?;
            Some(self.0.swap_remove(i).1)
        }
        pub(crate) fn contains(&self, k: K) -> bool {
            self.0.iter().any(|e| e.0 == k)
        }
        pub(crate) fn clear(&mut self) {
            self.0.clear();
        }
        pub(crate) fn keys_above(&self, k: K) -> heapless::Vec<K, { capacity::TABLE }> {
            let mut v: heapless::Vec<K, { capacity::TABLE }> =
                self.0.iter().map(|e| e.0).filter(|&id| id > k).collect();
            v.sort_unstable();
            v
        }
    }

    /// Deadlines ordered by time, fixed capacity.
    #[derive(Debug)]
    pub(crate) struct Deadlines<K = u64>(heapless::Vec<(Instant, K), { capacity::TABLE }>);

    impl<K: Copy + Ord> Deadlines<K> {
        pub(crate) fn new() -> Self {
            Deadlines(heapless::Vec::new())
        }
        /// Callers insert at most one deadline per table entry, so this fits.
        pub(crate) fn insert(&mut self, t: Instant, id: K) {
            let at = self.0.partition_point(|&e| e < (t, id));
            let _ = self.0.insert(at, (t, id));
        }
        pub(crate) fn remove(&mut self, t: Instant, id: K) {
            if let Some(i) = self.0.iter().position(|&e| e == (t, id)) {
                self.0.remove(i);
            }
        }
        pub(crate) fn first(&self) -> Option<(Instant, K)> {
            self.0.first().copied()
        }
        pub(crate) fn pop_first(&mut self) -> Option<(Instant, K)> {
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
        pub(crate) fn front(&self) -> Option<&T> {
            self.0.front()
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

    /// The sorted tables behave like the ordered collections they replace, for any
    /// order of operations (keys from a small range, so collisions are frequent).
    #[cfg(feature = "alloc")]
    #[test]
    fn sorted_tables_match_ordered_collections() {
        use alloc::collections::{BTreeMap, BTreeSet};
        fn prop(ops: alloc::vec::Vec<(u8, u8, u8)>) -> bool {
            let mut m: Map<u8> = Map::new();
            let mut mm = BTreeMap::new();
            let mut d = Deadlines::new();
            let mut dm = BTreeSet::new();
            for (op, k, v) in ops {
                let (k64, t) = (u64::from(k % 16), Instant::from_millis(u64::from(v % 8)));
                match op % 6 {
                    0 => {
                        m.insert(k64, v).unwrap();
                        mm.insert(k64, v);
                    }
                    1 => {
                        if m.remove(k64) != mm.remove(&k64) {
                            return false;
                        }
                    }
                    2 => {
                        if let (Some(a), Some(b)) = (m.get_mut(k64), mm.get_mut(&k64)) {
                            *a = v;
                            *b = v;
                        }
                    }
                    3 => {
                        d.insert(t, k64);
                        dm.insert((t, k64));
                    }
                    4 => {
                        d.remove(t, k64);
                        dm.remove(&(t, k64));
                    }
                    _ => {
                        if d.pop_first() != dm.pop_first() {
                            return false;
                        }
                    }
                }
                let keys: alloc::vec::Vec<u64> = mm.keys().copied().collect();
                let above: alloc::vec::Vec<u64> = mm.range(k64 + 1..).map(|e| *e.0).collect();
                if m.len() != mm.len()
                    || m.get(k64) != mm.get(&k64)
                    || m.contains(k64) != mm.contains_key(&k64)
                    || m.keys_above(k64) != above
                    || m.keys_above(0).len() + usize::from(m.contains(0)) != keys.len()
                    || d.first() != dm.first().copied()
                {
                    return false;
                }
            }
            true
        }
        quickcheck::QuickCheck::new()
            .tests(300)
            .quickcheck(prop as fn(alloc::vec::Vec<(u8, u8, u8)>) -> bool);
    }
}
