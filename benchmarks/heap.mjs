// Heap held, measured the same way for the tracker (producer.mjs) and the peers (peer-producer.mjs).

/** heapUsed once full GCs stop shrinking it: sweeping goes on after gc() returns. */
export async function settledHeap () {
  let used = Infinity
  for (let i = 0; i < 10; i++) {
    globalThis.gc()
    await new Promise((resolve) => setTimeout(resolve, 20))
    const now = process.memoryUsage().heapUsed
    if (now >= used - 1024) return now
    used = now
  }
  return used
}

/**
 * Bytes of heap per item that `add(i)` holds for i = 1..n, after `setUp()` has
 * made the client and `add(0)` has warmed it up: a client's fixed costs (its
 * modules, its first queue or cache) are in the baseline, not in the items.
 * Returns the client so that it stays alive until after the measurement.
 */
export async function heapPerItem (n, setUp, add, { settle = true } = {}) {
  // settle: false for clients whose calls are asynchronous (the peers): waiting would let them send
  // what they hold, so their heap is read right after the calls, with two full GCs and no wait.
  const heap = settle ? settledHeap : () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().heapUsed }
  const client = setUp()
  add(client, 0)
  const h0 = await heap()
  for (let i = 1; i <= n; i++) add(client, i)
  const h1 = await heap()
  return { bytesPerItem: (h1 - h0) / n, client }
}
