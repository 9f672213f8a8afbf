//! Garbage collection of index files, every `dataCoord.gc.interval`: a file under
//! `index_files/<buildID>/` whose build has no record (an indexnode that finished a build
//! whose index or segment was dropped meanwhile, or that died before registering it) is
//! deleted once it was older than `dataCoord.gc.missingTolerance` when the records were
//! read (`storage::older_at`, as the datacoord's collector measures). The builds of dropped
//! indexes and segments themselves are removed with their files by the reconcile pass
//! (a dropped segment's build once no merged segment's build may start from it).
//!
//! The listing is taken before the records are read, so a build recorded in between counts
//! as named (and a file is only ever written for a build that was recorded first).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use super::IndexCoord;
use crate::meta::index::INDEX_FILES;
use crate::session::fenced::FencedStore;
use crate::storage::older_at;

/// Runs until the term ends.
pub async fn run(ic: Arc<IndexCoord>, store: FencedStore) {
    let cfg = ic.ctx.config.segment.clone();
    loop {
        tokio::time::sleep(cfg.gc_interval).await;
        if !store.term().is_valid() {
            return;
        }
        match collect(&ic, cfg.gc_missing_tolerance).await {
            Ok(0) => {}
            Ok(n) => log::info!(files = n; "index files of unrecorded builds deleted"),
            Err(e) => {
                log::warn!(error = e.as_str(); "index file garbage collection failed, trying at the next interval")
            }
        }
    }
}

/// The build ID of an index file key (`index_files/<buildID>/...`).
pub fn build_of(key: &str) -> Option<i64> {
    key.strip_prefix(INDEX_FILES)?
        .trim_start_matches('/')
        .split('/')
        .next()?
        .parse()
        .ok()
}

async fn collect(ic: &IndexCoord, age: std::time::Duration) -> Result<usize, String> {
    let listed = ic
        .storage
        .list_with_times(INDEX_FILES)
        .await
        .map_err(|e| e.to_string())?;
    let recorded: BTreeSet<i64> = ic
        .builds
        .read()
        .expect("builds lock")
        .all()
        .map(|b| b.record.build_id)
        .collect();
    let read_at = SystemTime::now();
    let mut deleted = 0;
    for (key, modified) in listed {
        if older_at(read_at, modified, age)
            && build_of(&key).is_some_and(|b| !recorded.contains(&b))
        {
            ic.storage.delete(&key).await.map_err(|e| e.to_string())?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_file_keys_name_their_build() {
        assert_eq!(super::build_of("index_files/42/index"), Some(42));
        assert_eq!(super::build_of("index_files/x/index"), None);
        assert_eq!(super::build_of("insert_log/42/1"), None);
    }
}
