//! Fenced writes at the library level, against a real etcd: a write conditioned on the
//! epoch goes through while the term holds and is refused once another session owns
//! the ACTIVE key.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{PutOptions, TxnOp};
use milvus::etcd::Etcd;
use milvus::roles::Role;
use milvus::session::election::{self, TermEnd};
use milvus::session::fenced::{FenceError, FencedStore};
use milvus::session::{Keys, Session};
use milvus::testkit::EtcdServer;

#[test]
fn a_write_after_the_active_key_changed_hands_is_refused() {
    let server = EtcdServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = milvus::testkit::sample::etcd_config(&server.endpoint());
        let etcd = Etcd::connect(&cfg).await.unwrap();
        let keys = Keys::new("by-dev/meta");
        let session = Session::create(
            &etcd,
            &keys,
            Role::RootCoord,
            "127.0.0.1:1",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let term = Arc::new(election::claim_exclusive(&session, "X").await.unwrap());
        let store = FencedStore::new(etcd.clone(), term.clone());
        store
            .write(vec![TxnOp::put("by-dev/meta/root-coord/t1", "a", None)])
            .await
            .unwrap();

        // Another session takes the ACTIVE key (as a standby would after an expiry).
        let mut c = etcd.stream_client().0;
        let other = c.lease_grant(10, None).await.unwrap().id();
        c.delete(keys.active(Role::RootCoord), None).await.unwrap();
        c.put(
            keys.active(Role::RootCoord),
            "{}",
            Some(PutOptions::new().with_lease(other)),
        )
        .await
        .unwrap();

        let r = store
            .write(vec![TxnOp::put("by-dev/meta/root-coord/t2", "b", None)])
            .await;
        assert!(
            matches!(r, Err(FenceError::Fenced { .. } | FenceError::NotActive)),
            "{r:?}"
        );
        let why = tokio::time::timeout(Duration::from_secs(2), term.ended())
            .await
            .unwrap();
        assert!(
            matches!(why, TermEnd::Fenced | TermEnd::Deposed(_)),
            "{why:?}"
        );
        assert!(!term.is_valid());
        let got = c.get("by-dev/meta/root-coord/t2", None).await.unwrap();
        assert!(got.kvs().is_empty(), "the refused write reached etcd");
    });
}

#[test]
fn a_conditional_write_with_a_stale_revision_writes_nothing_and_keeps_the_term() {
    use etcd_client::{Compare, CompareOp};
    let server = EtcdServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let etcd = Etcd::connect(&milvus::testkit::sample::etcd_config(&server.endpoint()))
            .await
            .unwrap();
        let keys = Keys::new("by-dev/meta");
        let session = Session::create(
            &etcd,
            &keys,
            Role::RootCoord,
            "127.0.0.1:1",
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        let term = Arc::new(election::claim_exclusive(&session, "X").await.unwrap());
        let store = FencedStore::new(etcd.clone(), term.clone());
        let key = "by-dev/meta/root-coord/rec";
        let first = store
            .write(vec![TxnOp::put(key, "v1", None)])
            .await
            .unwrap();
        let second = store
            .write(vec![TxnOp::put(key, "v2", None)])
            .await
            .unwrap();
        // A read-modify-write based on the first version is refused, without fencing.
        let stale = Compare::mod_revision(key, CompareOp::Equal, first);
        let r = store
            .write_if(vec![stale], vec![TxnOp::put(key, "lost", None)])
            .await
            .unwrap();
        assert_eq!(r, None);
        assert!(term.is_valid());
        let fresh = Compare::mod_revision(key, CompareOp::Equal, second);
        let r = store
            .write_if(vec![fresh], vec![TxnOp::put(key, "v3", None)])
            .await
            .unwrap();
        assert!(r.is_some_and(|rev| rev > second));
        let got = etcd.stream_client().0.get(key, None).await.unwrap();
        assert_eq!(got.kvs()[0].value(), b"v3");
    });
}
