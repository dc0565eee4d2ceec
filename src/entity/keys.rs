//! A compact index of account keys, for what a run keeps by account: earlier runs' results
//! and what escalations last listed.

use std::hash::BuildHasher;

/// Account keys, each given the next slot: the keys' texts kept end to end in one buffer
/// and a hash table of slots, about 25 bytes an account at 1M (a map of `Arc<str>` with its
/// list of keys took about 100). Hashed with foldhash's quality hash, not its fast one: on
/// keys such as `A000001`..`A999999` the fast hash left hashbrown probing long chains (a run
/// with history at 1M accounts spent 12 s reading one earlier run). The outcomes' per-chunk
/// texts (`rules::outcomes::Names`) are kept the same way, with Arrow's offsets and at most
/// 64k texts.
#[derive(Clone, Default)]
pub struct KeyIndex {
    text: String,
    /// Where each slot's key ends in `text`.
    ends: Vec<usize>,
    slots: hashbrown::HashTable<u32>,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for KeyIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyIndex").field("len", &self.len()).finish()
    }
}

impl KeyIndex {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The key of `slot`.
    pub fn key(&self, slot: usize) -> &str {
        key_at(&self.text, &self.ends, slot)
    }

    pub fn get(&self, key: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(key);
        self.slots.find(hash, |&slot| self.key(slot as usize) == key).map(|&slot| slot as usize)
    }

    /// The slot of `key`, given the next one if it is new.
    pub fn insert(&mut self, key: &str) -> usize {
        if let Some(slot) = self.get(key) {
            return slot;
        }
        let slot = self.ends.len();
        self.text.push_str(key);
        self.ends.push(self.text.len());
        // The table rehashes the keys as it grows, reading them beside it.
        let Self { text, ends, slots, hasher } = self;
        let slot32 = u32::try_from(slot).expect("fewer than 4G accounts");
        slots.insert_unique(hasher.hash_one(key), slot32, |&s| hasher.hash_one(key_at(text, ends, s as usize)));
        slot
    }

    /// Every key, in the order of its slot.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|slot| self.key(slot))
    }
}

/// The key of `slot`, given the buffer and where each key ends.
fn key_at<'t>(text: &'t str, ends: &[usize], slot: usize) -> &'t str {
    let start = if slot == 0 { 0 } else { ends[slot - 1] };
    &text[start..ends[slot]]
}

#[cfg(test)]
mod tests {
    use super::KeyIndex;

    #[test]
    fn keys_get_slots_in_order() {
        let mut index = KeyIndex::default();
        assert!(index.is_empty());
        assert_eq!(index.get("A1"), None);
        // Keys that run into one another in the buffer stay apart.
        for (key, slot) in [("A1", 0), ("A12", 1), ("", 2), ("2", 3), ("A1", 0), ("é", 4)] {
            assert_eq!(index.insert(key), slot, "{key}");
        }
        assert_eq!(index.len(), 5);
        assert_eq!(index.iter().collect::<Vec<_>>(), ["A1", "A12", "", "2", "é"]);
        assert_eq!(index.get("A12"), Some(1));
        assert_eq!(index.get(""), Some(2));
        assert_eq!(index.get("A"), None);
        // Past the table's first growths, every key is still found.
        for n in 0..10_000 {
            index.insert(&format!("B{n}"));
        }
        assert!((0..10_000).all(|n| index.get(&format!("B{n}")) == Some(5 + n)));
        assert_eq!(index.key(5 + 9_999), "B9999");
    }
}

/// How account keys are ordered where a list shows them: keys of digits as the numbers they
/// are (`9` before `10`, leading zeros aside), anything else as text.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let (x, y) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
        x.len().cmp(&y.len()).then_with(|| x.cmp(y)).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

#[cfg(test)]
mod key_order_tests {
    #[test]
    fn digit_keys_sort_as_numbers_and_others_as_text() {
        let mut keys = vec!["10", "9", "100", "009", "A10", "A9", "2"];
        keys.sort_by(|a, b| super::key_order(a, b));
        assert_eq!(keys, ["2", "009", "9", "10", "100", "A10", "A9"]);
    }
}
