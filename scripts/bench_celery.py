"""Celery + RabbitMQ on the same trivial workload as crunch-bench-load drain:
JOBS factorizations of distinct small numbers (sympy's factorint, as the 000
seed did), queued first, then one Celery worker (prefork, one process per core)
started; timed until every result is in the Redis result backend.
Prints one table row. Used by scripts/bench-load.sh.

  python bench_celery.py JOBS
"""
import os
import subprocess
import sys
import time

import redis
from celery import Celery

BROKER = os.environ.get("CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
BACKEND = os.environ.get("CELERY_BACKEND", "redis://127.0.0.1:6379/9")
QUEUE = f"crunch-bench-{os.getpid()}"

app = Celery("bench_celery", broker=BROKER, backend=BACKEND)
app.conf.update(task_default_queue=QUEUE, result_expires=3600, worker_prefetch_multiplier=4,
                task_acks_late=True, broker_connection_retry_on_startup=True)


@app.task(name="factorize")
def factorize(n):
    from sympy import factorint
    return {str(p): e for p, e in factorint(int(n)).items()}


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    r = redis.Redis.from_url(BACKEND)
    r.flushdb()
    for i in range(jobs):
        factorize.apply_async((str(3_000_000_000 + i),), queue=QUEUE)
    here = os.path.dirname(os.path.abspath(__file__))
    start = time.monotonic()
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_celery", "worker", "-Q", QUEUE, "-c", str(os.cpu_count()),
         "-P", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "WARNING"],
        cwd=here, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while r.dbsize() < jobs:
            if time.monotonic() - start > 900:
                raise SystemExit("celery did not finish in 900 s")
            time.sleep(0.05)
        secs = time.monotonic() - start
    finally:
        worker.terminate()
        worker.wait()
        app.connection().default_channel.queue_delete(QUEUE)
        r.flushdb()
    print(f"| celery {os.cpu_count()} processes | {jobs} | {secs:.2f} | {jobs / secs:.0f} |")


if __name__ == "__main__":
    main()
