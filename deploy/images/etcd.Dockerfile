# milvus-ha-etcd:<version>: etcd and etcdctl from Debian's etcd-server and etcd-client
# packages (scripts/build_images.sh extracts them), data in /etcd.
FROM milvus-ha-base:bookworm
COPY etcd etcdctl /usr/local/bin/
RUN mkdir -p /etcd
ENV ETCDCTL_API=3
EXPOSE 2379
CMD ["etcd", "--data-dir", "/etcd", "--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://etcd:2379"]
