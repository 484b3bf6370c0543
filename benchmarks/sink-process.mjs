// The benchmark sink (sink.mjs) started in its own process, driven over IPC.
import { fork } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

/** Starts the sink; messages are answered in order. */
export async function startSink () {
  const child = fork(join(here, 'sink.mjs'), { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  // A sink that dies fails the benchmark rather than leaving it waiting for an answer forever.
  const next = () => new Promise((resolve, reject) => {
    const died = (code, signal) => reject(new Error(`the sink exited (${signal ?? code})`))
    child.once('exit', died)
    child.once('message', (m) => { child.off('exit', died); resolve(m) })
  })
  const { port } = await next()
  return {
    port,
    /** `config`: how the sink behaves until the next reset (delay, faults, outage: see sink.mjs). */
    async reset (expected, config) { child.send({ type: 'reset', expected, config }); await next() },
    async report (upTo) { child.send({ type: 'report', upTo }); return next() },
    stop () { child.send({ type: 'stop' }) }
  }
}

/** Whether the sink's report shows every one of `expected` items received once, and nothing else. */
export const exactlyOnce = (report, expected) =>
  report.items === expected && report.missing === 0 && report.duplicated === 0 && report.repeatedIds === 0 && report.badSeq === 0
