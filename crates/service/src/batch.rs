//! Many small writes to PostgreSQL made as few transactions.

/// Group commit: many tasks each send one request and await its answer; a
/// task hands whatever requests queued up meanwhile (at most `max`) to `run`
/// in one blocking call with one pooled connection (one transaction for all),
/// with at most `parallel` such calls at a time. `run` answers every request
/// in order. If a batch of several fails for a reason other than an outage,
/// each of its requests is run again alone, so that one bad request cannot
/// fail the others.
pub struct GroupCommit<Req, Resp> {
    tx: tokio::sync::mpsc::UnboundedSender<(Req, tokio::sync::oneshot::Sender<Result<Resp, crunch_store::StoreError>>)>,
}

impl<Req, Resp> Clone for GroupCommit<Req, Resp> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> GroupCommit<Req, Resp> {
    pub fn spawn<F>(name: &'static str, pool: crunch_store::PgPool, max: usize, parallel: usize, run: F) -> Self
    where
        F: Fn(&mut crunch_store::PgConnection, &[Req]) -> Result<Vec<Resp>, crunch_store::StoreError> + Send + Sync + 'static,
    {
        type Waiter<R> = tokio::sync::oneshot::Sender<Result<R, crunch_store::StoreError>>;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Req, Waiter<Resp>)>();
        let run = std::sync::Arc::new(run);
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        tokio::spawn(async move {
            let mut buf = Vec::with_capacity(max);
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                if rx.recv_many(&mut buf, max.max(1)).await == 0 {
                    break;
                }
                let (reqs, waiters): (Vec<Req>, Vec<Waiter<Resp>>) = std::mem::take(&mut buf).into_iter().unzip();
                let (pool, run) = (pool.clone(), run.clone());
                tokio::task::spawn_blocking(move || {
                    let _slot = slot;
                    let answers = pool.get().map_err(crunch_store::StoreError::from).and_then(|mut conn| {
                        match run(&mut conn, &reqs) {
                            Err(e) if reqs.len() > 1 && !e.is_unavailable() => {
                                tracing::warn!(error = ?e, what = name, items = reqs.len(), "batch failed; running its requests one by one");
                                Ok(reqs
                                    .chunks(1)
                                    .map(|one| run(&mut conn, one).and_then(|mut v| v.pop().ok_or(crunch_store::StoreError::Missing)))
                                    .collect::<Vec<_>>())
                            }
                            other => other.map(|v| v.into_iter().map(Ok).collect()),
                        }
                    });
                    match answers {
                        Ok(answers) => waiters.into_iter().zip(answers).for_each(|(w, a)| drop(w.send(a))),
                        Err(e) if waiters.len() == 1 => {
                            if let Some(w) = waiters.into_iter().next() {
                                let _ = w.send(Err(e));
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            for w in waiters {
                                let _ = w.send(Err(crunch_store::StoreError::Unavailable(msg.clone())));
                            }
                        }
                    }
                });
            }
        });
        Self { tx }
    }

    /// Queues one request and waits for its answer.
    pub async fn call(&self, req: Req) -> Result<Resp, crunch_store::StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.send((req, tx)).map_err(|_| crunch_store::StoreError::Unavailable("the batcher stopped".into()))?;
        rx.await.map_err(|_| crunch_store::StoreError::Unavailable("the batch was dropped".into()))?
    }
}

/// A write many tasks need done but none needs to wait for: items sent on the
/// returned channel are handed to `flush` in batches (whatever has arrived
/// while the previous batch was written, up to `max`) on a blocking thread
/// with one pooled connection. One statement for many jobs instead of one
/// transaction each. A batch that fails is logged and dropped: use it only for
/// writes something else repairs (an unmarked publication is republished by
/// the reconciler, an unmarked event re-sent by the relay and deduplicated).
pub fn spawn_batch_writer<T, F>(name: &'static str, pool: crunch_store::PgPool, max: usize, flush: F) -> tokio::sync::mpsc::UnboundedSender<T>
where
    T: Send + 'static,
    F: Fn(&mut crunch_store::PgConnection, &[T]) -> Result<(), crunch_store::StoreError> + Send + Sync + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<T>();
    let flush = std::sync::Arc::new(flush);
    tokio::spawn(async move {
        let mut buf = Vec::with_capacity(max);
        while rx.recv_many(&mut buf, max.max(1)).await > 0 {
            let batch = std::mem::take(&mut buf);
            let (pool, flush) = (pool.clone(), flush.clone());
            let n = batch.len();
            let res = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let mut conn = pool.get()?;
                Ok(flush(&mut conn, &batch)?)
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, what = name, items = n, "batched write failed; it is repaired later"),
                Err(e) => tracing::warn!(error = %e, what = name, "batched write task failed"),
            }
        }
    });
    tx
}
