import { randomUUID } from 'node:crypto'
import * as fs from 'node:fs'
import { hostname } from 'node:os'
import * as path from 'node:path'
import { ConfigError } from '../shared/errors'

export const LOCK_NAME = 'LOCK'
/** How often the owner touches its lock, so a process on another host can tell it is alive. */
export const LOCK_HEARTBEAT_MS = 10_000
/** A lock from another host untouched for this long belongs to a process that is gone. */
export const LOCK_STALE_MS = 30_000

interface Owner {
  pid: number
  hostname: string
  /** Changes at every boot: a lock from before a reboot is stale whatever its pid. */
  bootId: string | undefined
  /** The owner's start time in clock ticks since boot (Linux): tells a reused pid from its owner. */
  startTicks: string | undefined
  token: string
}

/** Spool directories locked by this process: a pid check cannot tell two trackers of one process apart. */
const heldHere = new Set<string>()

export interface Lock {
  /** Touches the lock file (see LOCK_HEARTBEAT_MS). */
  heartbeat: () => void
  release: () => void
}

/**
 * Takes the directory for this process: a lock file with the owner's pid, host,
 * boot and start time. A lock left by a dead process (same host: its pid is gone
 * or reused, or the host rebooted; another host: not touched for LOCK_STALE_MS)
 * is taken over. Throws ConfigError when a live process holds it.
 */
export function acquireLock (dir: string): Lock {
  const file = path.join(dir, LOCK_NAME)
  if (heldHere.has(dir)) throw new ConfigError('spool.dir', `${dir} is already used by another tracker in this process`)
  const me: Owner = { pid: process.pid, hostname: hostname(), bootId: bootId(), startTicks: startTicks(process.pid), token: randomUUID() }
  const text = JSON.stringify(me)
  try {
    fs.writeFileSync(file, text, { flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unusable(dir, err)
    const owner = readOwner(file)
    if (owner !== undefined && isAlive(owner, me, file)) {
      throw new ConfigError('spool.dir', `${dir} is in use by process ${owner.pid} on ${owner.hostname}; two live trackers ` +
        `must not share a spool directory (give each process its own, e.g. one per container or worker)`)
    }
    // Taken over atomically: a rename replaces the stale lock, and the token read back says who won a race.
    const temp = `${file}.${me.token}`
    try {
      fs.writeFileSync(temp, text)
      fs.renameSync(temp, file)
    } catch (e) {
      throw unusable(dir, e)
    }
    if (readOwner(file)?.token !== me.token) throw new ConfigError('spool.dir', `${dir} was taken by another process starting at the same time`)
  }
  heldHere.add(dir)
  return {
    heartbeat: () => {
      const now = new Date()
      fs.utimes(file, now, now, () => {})
    },
    release: () => {
      heldHere.delete(dir)
      try {
        if (readOwner(file)?.token === me.token) fs.unlinkSync(file)
      } catch {
        // Left behind, it is stale once this process is gone.
      }
    }
  }
}

function unusable (dir: string, err: unknown): ConfigError {
  const e = err as NodeJS.ErrnoException
  return new ConfigError('spool.dir', `${dir} cannot be used: ${e.code ?? ''} ${e.message}`.trim(), { cause: err })
}

function readOwner (file: string): Owner | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(file, 'utf8')) as Owner
    return typeof o?.pid === 'number' && typeof o.hostname === 'string' ? o : undefined
  } catch {
    // Unreadable or half written (a crash between create and write): nobody can be shown to own it.
    return undefined
  }
}

function isAlive (owner: Owner, me: Owner, file: string): boolean {
  if (owner.hostname !== me.hostname) {
    try {
      return Date.now() - fs.statSync(file).mtimeMs < LOCK_STALE_MS
    } catch {
      return false
    }
  }
  if (owner.bootId !== undefined && me.bootId !== undefined && owner.bootId !== me.bootId) return false
  // Our own pid, not held by this process: an earlier process that had it (pid 1 in every container).
  if (owner.pid === me.pid) return false
  try {
    process.kill(owner.pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  const now = startTicks(owner.pid)
  return owner.startTicks === undefined || now === undefined || now === owner.startTicks
}

function bootId (): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return undefined
  }
}

function startTicks (pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22, counted after the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
