# Makefile - shortcuts for the scripts in scripts/.
#   make milvus   build ./bin/milvus (scripts/build.sh)
#   make test     run the test suite (scripts/test.sh); extra args: make test ARGS="--test ha"
#   make cluster  start a local cluster (scripts/start_cluster.sh); HA: make cluster ARGS=--ha
#   make stop     stop it (scripts/stop_cluster.sh); also etcd: make stop ARGS=--etcd
#   make fmt      cargo fmt
#   make lint     cargo fmt --check and cargo clippy -D warnings
SHELL := /bin/bash
ARGS ?=

.PHONY: all milvus test cluster stop fmt lint

all: milvus

milvus:
	bash scripts/build.sh

test:
	bash scripts/test.sh $(ARGS)

cluster:
	bash scripts/start_cluster.sh $(ARGS)

stop:
	bash scripts/stop_cluster.sh $(ARGS)

fmt:
	cargo fmt

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
