//! A minimal client of `milvus.proto.milvus.MilvusService` for tests and benchmarks:
//! any RPC by name, with the `dbname` metadata pymilvus sends.

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::Request;
use tonic_prost::ProstCodec;

/// Calls `MilvusService/<method>` on `channel` with `dbname: db`.
pub async fn call<Req, Resp>(
    channel: &Channel,
    method: &str,
    req: Req,
    db: &str,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("channel not ready: {e}")))?;
    let path = PathAndQuery::try_from(format!("/milvus.proto.milvus.MilvusService/{method}"))
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    let mut request = Request::new(req);
    if let Ok(v) = db.parse() {
        request.metadata_mut().insert("dbname", v);
    }
    grpc.unary(request, path, ProstCodec::<Req, Resp>::default())
        .await
        .map(tonic::Response::into_inner)
}

/// A lazy channel to `127.0.0.1:port`.
pub fn channel(port: u16) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("valid endpoint")
        .connect_lazy()
}
