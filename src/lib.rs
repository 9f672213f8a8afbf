//! A Milvus-compatible vector database cluster with coordinator high availability.
//!
//! One binary runs each component as its own process. Coordinators register in etcd
//! and work in active-standby groups: see [`session`] for the sessions, the election,
//! self-fencing and discovery, and [`roles`] for what each role runs.

pub mod analyzer;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod coord_client;
pub mod crash;
pub mod etcd;
pub mod exit;
pub mod expr;
pub mod geometry;
pub mod grpc;
pub mod http;
pub mod index;
pub mod logging;
pub mod memory;
pub mod meta;
pub mod pidfile;
pub mod process;
pub mod proto;
pub mod role;
pub mod roles;
pub mod schema;
pub mod session;
pub mod status;
pub mod storage;
pub mod testkit;
pub mod tls;
pub mod wal;
