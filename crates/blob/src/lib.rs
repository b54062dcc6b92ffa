//! `crunch-blob`: where uploaded files and result documents live.
//!
//! One interface ([`Blobs`]) over two backends, both from the `object_store`
//! crate: a local directory (the default; gateway and worker must share it)
//! or an S3-compatible service (MinIO in the stack), which can also hand out
//! presigned URLs so that clients upload and download without the gateway in
//! the path. Uploads are streamed as multipart uploads: never whole in memory.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{ObjectStore, WriteMultipart};

/// Which backend stores blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// A directory on the local filesystem (`CRUNCH_BLOB_DIR`).
    Local,
    /// An S3-compatible service (`S3_*` settings).
    S3,
}

/// Blob storage settings.
#[derive(Debug, Clone, Args)]
pub struct BlobArgs {
    /// `local` (a directory) or `s3` (an S3-compatible service such as MinIO).
    #[arg(long, env = "CRUNCH_BLOB_BACKEND", value_enum, default_value_t = Backend::Local)]
    pub blob_backend: Backend,
    /// The directory of the local backend (created if missing; the gateway and
    /// the workers must see the same one).
    #[arg(long, env = "CRUNCH_BLOB_DIR", default_value = ".dev/blobs")]
    pub blob_dir: PathBuf,
    /// S3 endpoint as the services reach it, e.g. http://minio:9000.
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 endpoint as clients reach it, used in presigned URLs (default: S3_ENDPOINT).
    #[arg(long, env = "S3_PUBLIC_ENDPOINT")]
    pub s3_public_endpoint: Option<String>,
    #[arg(long, env = "S3_BUCKET", default_value = "crunch")]
    pub s3_bucket: String,
    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    #[arg(long, env = "S3_ACCESS_KEY_ID", hide_env_values = true)]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<crunch_domain::Secret>,
    /// Offer presigned URLs (S3 only). Switch on only when clients can reach
    /// S3_PUBLIC_ENDPOINT; otherwise uploads go through the gateway.
    #[arg(long, env = "CRUNCH_BLOB_PRESIGN", default_value_t = false, action = clap::ArgAction::Set)]
    pub blob_presign: bool,
    /// How long presigned URLs stay valid, in seconds.
    #[arg(long, env = "CRUNCH_PRESIGN_TTL_SECS", default_value_t = 3600)]
    pub presign_ttl_secs: u64,
}

impl BlobArgs {
    /// The local backend in `dir` (tests, tools).
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        Self {
            blob_backend: Backend::Local,
            blob_dir: dir.into(),
            s3_endpoint: None,
            s3_public_endpoint: None,
            s3_bucket: "crunch".into(),
            s3_region: "us-east-1".into(),
            s3_access_key_id: None,
            s3_secret_access_key: None,
            blob_presign: true,
            presign_ttl_secs: 3600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    #[error("reading the upload failed: {0}")]
    Body(String),
    #[error("blob storage: {0}")]
    Store(#[from] object_store::Error),
}

/// Presigned URLs are for these two operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presign {
    Put,
    Get,
}

/// A blob's bytes ([`Blobs::get_body`]).
pub enum Body {
    /// The local backend's file, positioned at its start.
    File(std::fs::File),
    Stream(futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>>),
}

/// The blob store of a service.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// Signs URLs with the public endpoint (S3 only).
    signer: Option<Arc<AmazonS3>>,
    backend: Backend,
    ttl: Duration,
    presign: bool,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("backend", &self.backend).finish()
    }
}

fn s3(args: &BlobArgs, endpoint: &str) -> anyhow::Result<AmazonS3> {
    let mut b = AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(&args.s3_bucket)
        .with_region(&args.s3_region)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_virtual_hosted_style_request(false);
    if let (Some(id), Some(secret)) = (&args.s3_access_key_id, &args.s3_secret_access_key) {
        b = b.with_access_key_id(id).with_secret_access_key(secret.expose());
    }
    Ok(b.build()?)
}

impl Blobs {
    pub fn new(args: &BlobArgs) -> anyhow::Result<Self> {
        let ttl = Duration::from_secs(args.presign_ttl_secs.max(1));
        match args.blob_backend {
            Backend::Local => {
                std::fs::create_dir_all(&args.blob_dir)
                    .map_err(|e| anyhow::anyhow!("creating CRUNCH_BLOB_DIR {}: {e}", args.blob_dir.display()))?;
                let store = LocalFileSystem::new_with_prefix(&args.blob_dir)?.with_automatic_cleanup(true);
                Ok(Self { store: Arc::new(store), signer: None, backend: Backend::Local, ttl, presign: false })
            }
            Backend::S3 => {
                let endpoint = args.s3_endpoint.as_deref().ok_or_else(|| anyhow::anyhow!("CRUNCH_BLOB_BACKEND=s3 needs S3_ENDPOINT"))?;
                let store = s3(args, endpoint)?;
                let public = args.s3_public_endpoint.as_deref().filter(|e| !e.is_empty()).unwrap_or(endpoint);
                let signer = s3(args, public)?;
                Ok(Self { store: Arc::new(store), signer: Some(Arc::new(signer)), backend: Backend::S3, ttl, presign: args.blob_presign })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Creates the bucket if it does not exist (S3; a no-op for the local
    /// backend). MinIO and other S3 services answer 409 when it exists.
    pub async fn ensure_bucket(&self) -> anyhow::Result<()> {
        let Some(store) = &self.signer else { return Ok(()) };
        // Path-style "PUT /bucket/" is CreateBucket; sign it like an object URL.
        let url = store.signed_url(http::Method::PUT, &Path::from(""), Duration::from_secs(60)).await?;
        let res = reqwest::Client::new().put(url).send().await?;
        match res.status().as_u16() {
            200..=299 | 409 => Ok(()),
            s => anyhow::bail!("creating the bucket failed: HTTP {s}: {}", res.text().await.unwrap_or_default()),
        }
    }

    /// Streams `body` into `key` as a multipart upload, refusing (and
    /// aborting, so nothing is left) past `max_bytes`. Returns the size.
    pub async fn put_stream<S, E>(&self, key: &str, mut body: S, max_bytes: u64) -> Result<u64, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let upload = self.store.put_multipart(&Path::from(key)).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = w.abort().await;
                    return Err(BlobError::Body(e.to_string()));
                }
            };
            size += chunk.len() as u64;
            if size > max_bytes {
                let _ = w.abort().await;
                return Err(BlobError::TooLarge(max_bytes));
            }
            // Bounded memory: wait while two parts are in flight.
            if let Err(e) = w.wait_for_capacity(2).await {
                let _ = w.abort().await;
                return Err(e.into());
            }
            w.put(chunk);
        }
        w.finish().await?;
        Ok(size)
    }

    /// The blob's size, or None if there is no such blob.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, BlobError> {
        match self.store.head(&Path::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The blob's size and its bytes: the file itself with the local backend
    /// (for large reads: object_store's stream of a local file hands every
    /// 8 KiB piece to a blocking thread), a stream (one request) with S3. None
    /// if there is no such blob.
    pub async fn get_body(&self, key: &str) -> Result<Option<(u64, Body)>, BlobError> {
        match self.store.get(&Path::from(key)).await {
            Ok(res) => {
                let size = res.meta.size;
                let body = match res.payload {
                    object_store::GetResultPayload::File(file, _) => Body::File(file),
                    object_store::GetResultPayload::Stream(s) => Body::Stream(Box::pin(s.map_err(std::io::Error::other))),
                };
                Ok(Some((size, body)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned URL for `key` (S3 with `CRUNCH_BLOB_PRESIGN`; None
    /// otherwise), valid for `CRUNCH_PRESIGN_TTL_SECS`.
    pub async fn presign(&self, op: Presign, key: &str) -> Result<Option<url::Url>, BlobError> {
        let Some(s) = self.signer.as_ref().filter(|_| self.presign) else { return Ok(None) };
        let method = match op {
            Presign::Put => http::Method::PUT,
            Presign::Get => http::Method::GET,
        };
        Ok(Some(s.signed_url(method, &Path::from(key), self.ttl).await?))
    }

    pub fn presign_ttl(&self) -> Duration {
        self.ttl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_backend_streams_in_and_out_and_enforces_the_limit() {
        let dir = std::env::temp_dir().join(format!("crunch-blob-{}", std::process::id()));
        let blobs = Blobs::new(&BlobArgs::local(&dir)).unwrap();
        let parts: Vec<Result<Bytes, std::io::Error>> = (0..5).map(|i| Ok(Bytes::from(vec![b'a' + i; 3 << 20]))).collect();
        let n = blobs.put_stream("x/source", futures::stream::iter(parts), 1 << 30).await.unwrap();
        assert_eq!(n, 15 << 20);
        assert_eq!(blobs.size("x/source").await.unwrap(), Some(15 << 20));
        // The local backend gives the file itself, from its start.
        let Some((size, Body::File(mut file))) = blobs.get_body("x/source").await.unwrap() else { panic!("the local backend gives the file") };
        assert_eq!(size, 15 << 20);
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut all).unwrap();
        assert_eq!(all.len(), 15 << 20);
        assert_eq!((all[0], all[(3 << 20) + 1], all[all.len() - 1]), (b'a', b'b', b'e'));
        assert!(blobs.get_body("nothing/here").await.unwrap().is_none());

        let parts: Vec<Result<Bytes, std::io::Error>> = (0..5).map(|_| Ok(Bytes::from(vec![0u8; 1 << 20]))).collect();
        let err = blobs.put_stream("y/source", futures::stream::iter(parts), 3 << 20).await.unwrap_err();
        assert!(matches!(err, BlobError::TooLarge(_)));
        assert_eq!(blobs.size("y/source").await.unwrap(), None, "nothing left behind");
        assert!(blobs.presign(Presign::Get, "x/source").await.unwrap().is_none());
        blobs.delete("x/source").await.unwrap();
        assert_eq!(blobs.size("x/source").await.unwrap(), None);
        assert!(blobs.get_body("x/source").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
