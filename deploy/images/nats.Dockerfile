# milvus-ha-nats:<version>: nats-server from Debian's nats-server package, JetStream
# store in /nats (the write-ahead log of every shard).
FROM milvus-ha-base:bookworm
COPY nats-server /usr/local/bin/nats-server
RUN mkdir -p /nats
EXPOSE 4222 8222
CMD ["nats-server", "--jetstream", "--store_dir", "/nats", "--port", "4222", "--http_port", "8222"]
