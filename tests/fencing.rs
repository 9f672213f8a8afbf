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
