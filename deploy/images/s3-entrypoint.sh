#!/bin/sh
# Creates the bucket directory, then serves /data over the S3 protocol on :9000 with
# the MinIO-style credentials MINIO_ACCESS_KEY_ID / MINIO_SECRET_ACCESS_KEY.
set -e
mkdir -p "/data/${MINIO_BUCKET_NAME:-a-bucket}"
exec s3s-fs --host 0.0.0.0 --port 9000 \
    --access-key "${MINIO_ACCESS_KEY_ID:-minioadmin}" \
    --secret-key "${MINIO_SECRET_ACCESS_KEY:-minioadmin}" /data "$@"
