// The benchmark sink (sink.mjs) started in its own process, driven over IPC.
import { fork } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

/** Starts the sink; messages are answered in order. */
export async function startSink () {
  const child = fork(join(here, 'sink.mjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const next = () => new Promise((resolve) => child.once('message', resolve))
  const { port } = await next()
  return {
    port,
    async reset (expected) { child.send({ type: 'reset', expected }); await next() },
    async report () { child.send({ type: 'report' }); return next() },
    stop () { child.send({ type: 'stop' }) }
  }
}

/** Whether the sink's report shows every one of `expected` items received once, and nothing else. */
export const exactlyOnce = (report, expected) =>
  report.items === expected && report.missing === 0 && report.duplicated === 0 && report.repeatedIds === 0 && report.badSeq === 0
