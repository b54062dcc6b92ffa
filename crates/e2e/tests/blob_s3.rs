//! The S3 blob backend against a real S3-compatible server (s3s-fs, started
//! by scripts/test.sh): bucket creation, multipart streaming, limits,
//! presigned PUT and GET URLs used by a plain HTTP client.

use bytes::Bytes;
use crunch_blob::{BlobError, Blobs, Body, Presign};
use futures::TryStreamExt;

type R = anyhow::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_streams_limits_and_presigns() -> R {
    let bucket = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let blobs = Blobs::new(&crunch_e2e::s3_args(&bucket))?;
    blobs.ensure_bucket().await?;
    blobs.ensure_bucket().await?; // idempotent

    // 20 MiB in 1 MiB pieces: several multipart parts.
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..20u8).map(|i| Ok(Bytes::from(vec![b'a' + i; 1 << 20]))).collect();
    let n = blobs.put_stream("gene-files/x/source", futures::stream::iter(parts), 1 << 30).await?;
    assert_eq!(n, 20 << 20);
    assert_eq!(blobs.size("gene-files/x/source").await?, Some(20 << 20));
    let Some((size, Body::Stream(stream))) = blobs.get_body("gene-files/x/source").await? else { panic!("S3 gives a stream of the stored blob") };
    assert_eq!(size, 20 << 20);
    let back: Vec<Bytes> = stream.try_collect().await?;
    let back = back.concat();
    assert_eq!((back.len(), back[0], back[(7 << 20) + 5], back[back.len() - 1]), (20 << 20, b'a', b'h', b't'));

    // Over the limit: refused and aborted, nothing stored.
    let parts: Vec<Result<Bytes, std::io::Error>> = (0..12).map(|_| Ok(Bytes::from(vec![0u8; 1 << 20]))).collect();
    let err = blobs.put_stream("gene-files/y/source", futures::stream::iter(parts), 10 << 20).await.unwrap_err();
    assert!(matches!(err, BlobError::TooLarge(_)), "{err}");
    assert_eq!(blobs.size("gene-files/y/source").await?, None);

    // Presigned URLs work for a client without credentials.
    let http = reqwest::Client::new();
    let put = blobs.presign(Presign::Put, "gene-files/z/source").await?.expect("S3 presigns");
    let r = http.put(put.clone()).body(">a\nACGT\n").send().await?;
    assert!(r.status().is_success(), "presigned PUT: {} {}", r.status(), r.text().await?);
    assert_eq!(blobs.size("gene-files/z/source").await?, Some(8));
    let get = blobs.presign(Presign::Get, "gene-files/z/source").await?.expect("S3 presigns");
    assert_eq!(http.get(get.clone()).send().await?.text().await?, ">a\nACGT\n");
    // A tampered signature is refused.
    let forged = get.as_str().replace("X-Amz-Signature=", "X-Amz-Signature=0");
    let status = http.get(forged).send().await?.status();
    assert!(status.is_client_error(), "forged signature: {status}");

    blobs.delete("gene-files/x/source").await?;
    assert_eq!(blobs.size("gene-files/x/source").await?, None);
    Ok(())
}
