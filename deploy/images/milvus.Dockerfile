# milvus-ha:<version>: the `milvus` binary on PATH and the default configuration at
# /milvus/configs/milvus.yaml (found from the working directory /milvus), so a compose
# service's `command: ["milvus", "run", "rootcoord"]` works as written.
# Built by scripts/build_images.sh on milvus-ha-base (Debian bookworm, minbase + curl).
FROM milvus-ha-base:bookworm
COPY milvus /usr/local/bin/milvus
COPY milvus.yaml /milvus/configs/milvus.yaml
WORKDIR /milvus
# Local storage (common.storageType: local) and logs, when a volume is mounted here.
RUN mkdir -p /var/lib/milvus/data
CMD ["milvus", "--help"]
