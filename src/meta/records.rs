//! A generic [`Mirror`]: every protobuf record under one prefix, by the rest of its key,
//! with its mod revision. Keys starting with `~` (epoch markers) are not records.

use std::collections::BTreeMap;

use prost::Message;

use super::follower::Mirror;

/// One record and the revision it was written at.
#[derive(Debug, Clone)]
pub struct Record<T> {
    /// The record.
    pub value: T,
    /// Its mod revision.
    pub revision: i64,
}

/// The records of type `T` under a prefix (the mirror's keys are the prefix itself).
#[derive(Debug, Clone)]
pub struct Records<T> {
    items: BTreeMap<String, Record<T>>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            items: BTreeMap::new(),
        }
    }
}

impl<T: Message + Default + Send + Sync + 'static> Mirror for Records<T> {
    type Keys = String;

    fn prefix(keys: &String) -> &str {
        keys
    }

    fn apply_put(
        &mut self,
        keys: &String,
        key: &str,
        value: &[u8],
        revision: i64,
    ) -> Result<(), String> {
        let Some(rest) = key.strip_prefix(keys.as_str()) else {
            return Ok(());
        };
        if rest.starts_with('~') {
            return Ok(());
        }
        let value = T::decode(value).map_err(|e| format!("{key}: {e}"))?;
        self.items
            .insert(rest.to_string(), Record { value, revision });
        Ok(())
    }

    fn apply_delete(&mut self, keys: &String, key: &str) {
        if let Some(rest) = key.strip_prefix(keys.as_str()) {
            self.items.remove(rest);
        }
    }
}

impl<T> Records<T> {
    /// The record under `prefix + rest`.
    pub fn get(&self, rest: &str) -> Option<&Record<T>> {
        self.items.get(rest)
    }

    /// Every record, by key order.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Record<T>)> {
        self.items.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The records whose key (after the prefix) starts with `start`.
    pub fn under<'a>(&'a self, start: &'a str) -> impl Iterator<Item = (&'a str, &'a Record<T>)> {
        self.items
            .range(start.to_string()..)
            .take_while(move |(k, _)| k.starts_with(start))
            .map(|(k, v)| (k.as_str(), v))
    }
}
