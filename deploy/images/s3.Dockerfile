# milvus-ha-s3:<version>: an S3-protocol server that keeps objects as files on disk
# (the s3s-fs crate's binary; MinIO is not installable here). /data/<bucket> is a bucket;
# the entrypoint creates $MINIO_BUCKET_NAME (default a-bucket) before serving on 9000.
FROM milvus-ha-base:bookworm
COPY s3s-fs /usr/local/bin/s3s-fs
COPY s3-entrypoint.sh /usr/local/bin/s3-entrypoint.sh
RUN mkdir -p /data
EXPOSE 9000
ENTRYPOINT ["/usr/local/bin/s3-entrypoint.sh"]
