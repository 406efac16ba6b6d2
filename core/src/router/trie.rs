//! The topic trie: one node per filter token, so a publish walks only the
//! branches its topic can match, whatever the number of subscriptions.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use super::Entry;
use crate::topic::{SEPARATOR, WILDCARD_ONE, WILDCARD_TAIL};

/// Token trie node. Each subscription is stored at exactly one node (the
/// path of its filter), so a topic walk visits it at most once.
#[derive(Debug, Default)]
pub(super) struct Node {
    literal: BTreeMap<Box<str>, Node>,
    star: Option<Box<Node>>,
    /// Filters that end at this node.
    here: BTreeSet<Entry>,
    /// Filters that end with `>` right after this node.
    tail: BTreeSet<Entry>,
}

impl Node {
    /// Whether the node holds no filter and has no children (prunable).
    pub(super) fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.star.is_none()
            && self.here.is_empty()
            && self.tail.is_empty()
    }

    /// Stores `entry` at the node of `filter`'s path, creating the path.
    pub(super) fn insert(&mut self, filter: &str, entry: Entry) {
        let mut node = self;
        for token in filter.split(SEPARATOR) {
            if token == WILDCARD_TAIL {
                node.tail.insert(entry);
                return;
            }
            node = if token == WILDCARD_ONE {
                node.star.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(token.into()).or_default()
            };
        }
        node.here.insert(entry);
    }

    /// Removes `entry` stored under `tokens`, pruning nodes left empty so the
    /// trie's size follows the live subscriptions rather than their history.
    /// Recursion depth is bounded by `MAX_TOPIC_LEVELS`.
    pub(super) fn remove(&mut self, mut tokens: core::str::Split<'_, char>, entry: &Entry) -> bool {
        match tokens.next() {
            None => self.here.remove(entry),
            Some(WILDCARD_TAIL) => self.tail.remove(entry),
            Some(WILDCARD_ONE) => {
                let Some(child) = self.star.as_mut() else {
                    return false;
                };
                let found = child.remove(tokens, entry);
                if child.is_empty() {
                    self.star = None;
                }
                found
            }
            Some(token) => {
                let Some(child) = self.literal.get_mut(token) else {
                    return false;
                };
                let found = child.remove(tokens, entry);
                if child.is_empty() {
                    self.literal.remove(token);
                }
                found
            }
        }
    }

    /// Appends every entry whose filter matches the remaining `tokens`.
    pub(super) fn collect(&self, tokens: &[&str], out: &mut Vec<Entry>) {
        let Some((first, rest)) = tokens.split_first() else {
            out.extend(self.here.iter().copied());
            return;
        };
        // At least one token remains, which is what `>` requires.
        out.extend(self.tail.iter().copied());
        if let Some(child) = self.literal.get(*first) {
            child.collect(rest, out);
        }
        if let Some(child) = &self.star {
            child.collect(rest, out);
        }
    }

    #[cfg(test)]
    pub(super) fn node_count(&self) -> usize {
        1 + self.literal.values().map(Node::node_count).sum::<usize>()
            + self.star.as_ref().map_or(0, |s| s.node_count())
    }

    /// Appends every entry stored anywhere in the trie.
    #[cfg(test)]
    pub(super) fn collect_all(&self, out: &mut Vec<Entry>) {
        out.extend(self.here.iter().chain(&self.tail).copied());
        for child in self.literal.values().chain(self.star.as_deref()) {
            child.collect_all(out);
        }
    }
}
