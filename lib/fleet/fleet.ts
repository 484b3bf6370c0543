import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Clock, TimerHandle } from '../shared/clock'
import { ConfigError } from '../shared/errors'
import type { ResolvedFleetOptions } from './options'

/** Entries read per XREADGROUP; what is read is taken into memory whatever its room, so this bounds the overshoot. */
const READ_COUNT = 500
/** How long one XREADGROUP waits for entries: also how soon close() or a lack of room is noticed by the reader. */
const BLOCK_MS = 1000
/** XADDs encoded per turn of the event loop, at most. */
const ADD_SLICE = 2000
/** Records waiting for their XADD reply, at most; past it calls take the local path. */
const MAX_PENDING_ADDS = 20_000
/** Ids per XCLAIM when a consumer renews its claim on what it holds. */
const RENEW_CHUNK = 1000
/** A consumer that holds nothing and has not read for this many claimIdleMs is gone: it leaves the group. */
const GONE_AFTER_CLAIM_IDLES = 10
/** Wait before trying Redis again after a failed command. */
const RETRY_MS = 500

/** The subset of an ioredis client the fleet uses. */
interface RedisClient {
  status: string
  call(command: string, ...args: Array<string | number>): Promise<unknown>
  pipeline(): { call(command: string, ...args: Array<string | number>): unknown, exec(): Promise<Array<[Error | null, unknown]> | null> }
  duplicate(): RedisClient
  on(event: string, listener: (...args: unknown[]) => void): unknown
  disconnect(): void
  quit(): Promise<unknown>
  stream?: { ref?: () => void, unref?: () => void }
}
type RedisConstructor = new (url: string, options: Record<string, unknown>) => RedisClient

export interface FleetStats {
  stream: string
  consumer: string
  /** Whether the command connection is up. */
  connected: boolean
  /** Records this process added to the stream (XADD answered). */
  produced: number
  /** Entries this process read from the stream, and of those, claimed from a consumer that stopped renewing them. */
  consumed: number
  claimed: number
  /** Entries acknowledged and deleted after Koala accepted them (or they failed for good). */
  acked: number
  /** Entries this process holds (read, not yet settled). */
  held: number
  /** Calls delivered by this process itself because Redis could not take them (down, or its XADD failed). */
  local: number
  /** Failed Redis commands. */
  errors: number
}

export interface FleetHooks {
  /** An entry read from the stream, into memory (whatever the room: at most READ_COUNT over). Throws if unreadable. */
  admit: (payload: string, loc: number) => void
  /** Whether memory has room for more entries. */
  room: () => boolean
  /** Records Redis did not take (their XADD failed): the tracker delivers them itself. */
  fallback: (payloads: string[]) => void
  /** Another process of the fleet was told to wait (a 429 with Retry-After): nobody sends before `until`. */
  pause: (until: number) => void
  problem: (kind: string, level: 'warn' | 'error', fields: Record<string, unknown>, message: string) => void
}

function loadClient (): RedisConstructor {
  try {
    // Loaded only when a tracker is given `redis`: users without Redis never install it.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('ioredis') as { default?: RedisConstructor, Redis?: RedisConstructor }
    return (mod.default ?? mod.Redis ?? mod) as RedisConstructor
  } catch (err) {
    throw new ConfigError('redis', 'needs the ioredis package (npm install ioredis)', { cause: err })
  }
}

/**
 * Fleet mode: every accepted item is added to one Redis stream (XADD, pipelined
 * once per turn), and every consumer process reads the stream in one consumer
 * group (XREADGROUP), so one person's items from many processes share requests.
 * An entry is acknowledged and deleted (XACK, XDEL) once Koala accepted it or it
 * failed for good. A consumer renews its claim on what it holds (XCLAIM JUSTID)
 * every third of claimIdleMs; entries not renewed for claimIdleMs belong to a
 * consumer that died and are claimed by another (XAUTOCLAIM), original
 * message_ids and all. While Redis is unreachable, calls take the local path.
 */
export class Fleet {
  readonly #opts: ResolvedFleetOptions
  readonly #clock: Clock
  readonly #hooks: FleetHooks
  readonly #cmd: RedisClient
  readonly #block: RedisClient | undefined
  readonly #name = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`
  #adds: string[] = []
  #pendingAdds = 0
  /** XADDs sent and not yet answered, with their records (Redis may or may not have them). */
  readonly #addsInFlight = new Map<Promise<void>, string[]>()
  #acks: string[] = []
  #kicked = false
  /** Entries held: a location (what the item carries, -2 and down) to its entry id. */
  readonly #held = new Map<number, string>()
  #seq = 0
  #closed = false
  #reader: Promise<void> | undefined
  #wakeReader: (() => void) | undefined
  #janitor: TimerHandle | undefined
  #claimCursor = '0-0'
  #errorsInARow = 0
  readonly #stats = { produced: 0, consumed: 0, claimed: 0, acked: 0, local: 0, errors: 0 }

  constructor (opts: ResolvedFleetOptions, clock: Clock, hooks: FleetHooks) {
    this.#opts = opts
    this.#clock = clock
    this.#hooks = hooks
    const Redis = loadClient()
    // No offline queue: a command while disconnected fails at once, and the call takes the local path.
    this.#cmd = new Redis(opts.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
      connectionName: `koala-tracker:${this.#name}`
    })
    this.#watch(this.#cmd)
    if (opts.consume) {
      this.#block = this.#cmd.duplicate()
      this.#watch(this.#block)
      this.#reader = this.#read()
      this.#janitor = clock.setTimeout(() => this.#tend(), Math.floor(opts.claimIdleMs / 3))
    }
  }

  /** Whether a call can go to the stream now (else it takes the local path). */
  get ready (): boolean {
    return !this.#closed && this.#cmd.status === 'ready' && this.#pendingAdds + this.#adds.length < MAX_PENDING_ADDS
  }

  /** Whether records or acknowledgements are on their way to Redis. */
  get writing (): boolean {
    return this.#adds.length + this.#pendingAdds + this.#acks.length > 0
  }

  /**
   * For an exit that cannot wait: the records not known to be in the stream, taken out of the queue. `queued`
   * were never sent. `unanswered` were written to Redis's socket, which Redis still reads after the exit; kept
   * elsewhere too, one may arrive twice, and Koala drops the repeat.
   */
  takeUnconfirmed (): { queued: string[], unanswered: string[] } {
    const unanswered = [...this.#addsInFlight.values()].flat()
    this.#addsInFlight.clear()
    return { queued: this.#adds.splice(0), unanswered }
  }

  /** Sends the records queued and waits for every XADD's answer (those refused come back through `fallback`). */
  async drainAdds (): Promise<void> {
    this.#keepAlive(true)
    try {
      do await this.#flush()
      while (this.#adds.length !== 0)
      await Promise.all(this.#addsInFlight.keys())
    } finally {
      if (!this.#closed) this.#keepAlive(false)
    }
  }

  /**
   * For close(): a consumer reads what the stream holds now, while memory has room, so that the last consumer
   * of a fleet to stop delivers what it can instead of leaving it for the next to start.
   */
  async readRemaining (room: () => boolean): Promise<void> {
    if (!this.#opts.consume || this.#cmd.status !== 'ready') return
    try {
      while (room()) {
        const reply = await this.#cmd.call('XREADGROUP', 'GROUP', this.#opts.group, this.#name, 'COUNT', READ_COUNT,
          'STREAMS', this.#opts.stream, '>') as Array<[string, Entry[]]> | null
        let read = 0
        for (const [, entries] of reply ?? []) {
          this.#take(entries, false)
          read += entries.length
        }
        if (read < READ_COUNT) return
      }
    } catch (err) {
      this.#failed('xreadgroup', err)
    }
  }

  /** A call this process delivers itself, Redis not being ready. */
  tookLocally (): void {
    this.#stats.local++
  }

  /** Adds a record to the stream on the next turn, with the others of this turn. */
  add (payload: string): void {
    this.#adds.push(payload)
    this.#kick()
  }

  /** A held entry was delivered or failed for good: acknowledged and deleted. */
  settle (loc: number): void {
    const id = this.#held.get(loc)
    if (id === undefined) return
    this.#held.delete(loc)
    this.#acks.push(id)
    this.#kick()
  }

  /** Memory has room again: the reader may read. */
  resume (): void {
    this.#wakeReader?.()
  }

  /** Tells every process of the fleet to wait until `until` (epoch ms). */
  pauseAll (until: number): void {
    const ms = until - this.#clock.now()
    if (ms <= 0 || this.#cmd.status !== 'ready') return
    this.#cmd.call('SET', this.#opts.pauseKey, String(until), 'PX', ms).catch((err: unknown) => this.#failed('pause', err))
  }

  stats (): FleetStats {
    return { stream: this.#opts.stream, consumer: this.#name, connected: this.#cmd.status === 'ready', ...this.#stats, held: this.#held.size }
  }

  /** Sends what is queued, stops reading, and disconnects. Held entries stay pending: another consumer claims them. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    // Someone awaits this: the answers to the last commands hold the process until they come.
    this.#keepAlive(true)
    if (this.#janitor !== undefined) this.#clock.clearTimeout(this.#janitor)
    this.#wakeReader?.()
    await this.#flush()
    await Promise.all(this.#addsInFlight.keys())
    this.#block?.disconnect()
    await this.#reader
    if (this.#cmd.status === 'ready') await this.#cmd.quit().catch(() => this.#cmd.disconnect())
    else this.#cmd.disconnect()
  }

  #keepAlive (on: boolean): void {
    for (const client of [this.#cmd, this.#block]) {
      const socket = client?.stream as { ref?: () => void, unref?: () => void } | undefined
      if (on) socket?.ref?.()
      else socket?.unref?.()
    }
  }

  #watch (client: RedisClient): void {
    // Errors reach the commands that fail; the client's own 'error' events would otherwise be unhandled.
    client.on('error', () => {})
    // The tracker's connections never keep a process alive: an awaited flush() or close() does.
    client.on('connect', () => client.stream?.unref?.())
  }

  #kick (): void {
    if (this.#kicked) return
    this.#kicked = true
    setImmediate(() => {
      this.#kicked = false
      void this.#flush()
    })
  }

  async #flush (): Promise<void> {
    // A burst goes a slice per turn: encoding its commands is the host's CPU too.
    const adds = this.#adds.splice(0, ADD_SLICE)
    if (this.#adds.length !== 0) this.#kick()
    const acks = this.#acks
    this.#acks = []
    const work: Array<Promise<void>> = []
    if (adds.length !== 0) {
      const p = this.#sendAdds(adds)
      this.#addsInFlight.set(p, adds)
      void p.finally(() => this.#addsInFlight.delete(p))
      work.push(p)
    }
    if (acks.length !== 0) work.push(this.#sendAcks(acks))
    await Promise.all(work)
  }

  async #sendAdds (payloads: string[]): Promise<void> {
    this.#pendingAdds += payloads.length
    let failed: string[] = payloads
    try {
      const p = this.#cmd.pipeline()
      for (const payload of payloads) p.call('XADD', this.#opts.stream, '*', 'd', payload)
      const results = await p.exec() ?? []
      failed = payloads.filter((_, i) => results[i] === undefined || results[i][0] !== null)
      if (failed.length !== 0) this.#failed('xadd', results.find(r => r[0] !== null)?.[0])
    } catch (err) {
      this.#failed('xadd', err)
    } finally {
      this.#pendingAdds -= payloads.length
    }
    this.#stats.produced += payloads.length - failed.length
    if (failed.length !== 0) {
      // An XADD whose reply was lost may have added the entry: then it is delivered twice, and Koala drops the repeat.
      this.#stats.local += failed.length
      this.#hooks.fallback(failed)
    }
  }

  async #sendAcks (ids: string[]): Promise<void> {
    try {
      const p = this.#cmd.pipeline()
      p.call('XACK', this.#opts.stream, this.#opts.group, ...ids)
      p.call('XDEL', this.#opts.stream, ...ids)
      const results = await p.exec() ?? []
      const err = results.find(r => r[0] !== null)?.[0]
      if (err !== undefined) throw err
      this.#stats.acked += ids.length
      this.#errorsInARow = 0
    } catch (err) {
      this.#failed('xack', err)
      // Tried again later: left pending, another consumer would claim them and send them again.
      if (!this.#closed) this.#clock.setTimeout(() => { this.#acks.push(...ids); this.#kick() }, RETRY_MS)
    }
  }

  /** The consumer: reads new entries while memory has room, until close(). */
  async #read (): Promise<void> {
    const block = this.#block as RedisClient
    let grouped = false
    while (!this.#closed) {
      if (!this.#hooks.room()) {
        await this.#waitForRoom()
        continue
      }
      if (block.status !== 'ready') {
        // Connecting (at start, or Redis restarting): commands are not queued while disconnected.
        await this.#connected(block)
        continue
      }
      try {
        if (!grouped) grouped = await this.#createGroup(block)
        const reply = await block.call('XREADGROUP', 'GROUP', this.#opts.group, this.#name, 'COUNT', READ_COUNT,
          'BLOCK', BLOCK_MS, 'STREAMS', this.#opts.stream, '>') as Array<[string, Entry[]]> | null
        this.#errorsInARow = 0
        if (reply !== null) for (const [, entries] of reply) this.#take(entries, false)
      } catch (err) {
        if (this.#closed) break
        if (/NOGROUP/.test(String((err as Error)?.message))) grouped = false
        this.#failed('xreadgroup', err)
        await this.#sleep(RETRY_MS)
      }
    }
  }

  async #createGroup (client: RedisClient): Promise<boolean> {
    try {
      // From the stream's start: entries added before the first consumer came are read too.
      await client.call('XGROUP', 'CREATE', this.#opts.stream, this.#opts.group, '0', 'MKSTREAM')
    } catch (err) {
      if (!/BUSYGROUP/.test(String((err as Error)?.message))) throw err
    }
    return true
  }

  #take (entries: Entry[], claimed: boolean): void {
    for (const entry of entries) {
      if (entry === null) continue
      const [id, fields] = entry
      const i = fields?.indexOf('d') ?? -1
      const payload = i === -1 ? undefined : fields[i + 1]
      // Negative: the item's place, told apart from the spool's (0 and up) and from none (-1).
      const loc = -2 - this.#seq++
      this.#stats.consumed++
      if (claimed) this.#stats.claimed++
      this.#held.set(loc, id)
      try {
        if (payload === undefined) throw new Error('no d field')
        this.#hooks.admit(payload, loc)
      } catch {
        this.#hooks.problem('redis_entry', 'error', { id }, `koala-tracker fleet: stream entry ${id} is not an item; it was acknowledged and dropped`)
        this.settle(loc)
      }
    }
  }

  /** Every third of claimIdleMs: renew the claim on what this consumer holds, take over what a dead one left, and read the fleet's pause. */
  async #tend (): Promise<void> {
    this.#janitor = undefined
    try {
      if (this.#cmd.status === 'ready') {
        const ids = [...this.#held.values()]
        for (let i = 0; i < ids.length; i += RENEW_CHUNK) {
          await this.#cmd.call('XCLAIM', this.#opts.stream, this.#opts.group, this.#name, 0, ...ids.slice(i, i + RENEW_CHUNK), 'JUSTID')
        }
        await this.#claimAbandoned()
        await this.#forgetGone()
        const until = Number(await this.#cmd.call('GET', this.#opts.pauseKey))
        if (until > this.#clock.now()) this.#hooks.pause(until)
      }
    } catch (err) {
      this.#failed('claim', err)
    } finally {
      if (!this.#closed) this.#janitor = this.#clock.setTimeout(() => { void this.#tend() }, Math.floor(this.#opts.claimIdleMs / 3))
    }
  }

  /** Containers come and go: consumers long gone with nothing pending are removed from the group, which stays small. */
  async #forgetGone (): Promise<void> {
    const consumers = await this.#cmd.call('XINFO', 'CONSUMERS', this.#opts.stream, this.#opts.group) as unknown[][]
    for (const fields of consumers) {
      const info: Record<string, unknown> = {}
      for (let i = 0; i + 1 < fields.length; i += 2) info[String(fields[i])] = fields[i + 1]
      if (info.name !== this.#name && info.pending === 0 && Number(info.idle) > GONE_AFTER_CLAIM_IDLES * this.#opts.claimIdleMs) {
        await this.#cmd.call('XGROUP', 'DELCONSUMER', this.#opts.stream, this.#opts.group, String(info.name))
      }
    }
  }

  async #claimAbandoned (): Promise<void> {
    for (let round = 0; round < 10 && this.#hooks.room() && !this.#closed; round++) {
      const [next, entries] = await this.#cmd.call('XAUTOCLAIM', this.#opts.stream, this.#opts.group, this.#name,
        this.#opts.claimIdleMs, this.#claimCursor, 'COUNT', 100) as [string, Entry[]]
      this.#take(entries, true)
      this.#claimCursor = next
      if (next === '0-0') return
    }
  }

  #failed (what: string, err: unknown): void {
    this.#stats.errors++
    // One line per run of failures (Redis down), not one per command.
    if (this.#errorsInARow++ === 0) {
      const then = what === 'xadd' ? 'calls are delivered by this process until it is back' : 'trying again'
      this.#hooks.problem('redis', 'warn', { err, what }, `koala-tracker fleet: Redis ${what} failed (${(err as Error)?.message ?? String(err)}); ${then}`)
    }
  }

  /** Resolves when the client is ready, or after RETRY_MS (so close() is noticed). */
  #connected (client: RedisClient): Promise<void> {
    return new Promise(resolve => {
      const done = (): void => {
        this.#clock.clearTimeout(timer)
        resolve()
      }
      const timer = this.#clock.setTimeout(done, RETRY_MS)
      ;(client as unknown as { once: (event: string, fn: () => void) => void }).once('ready', done)
    })
  }

  #waitForRoom (): Promise<void> {
    return new Promise(resolve => {
      const timer = this.#clock.setTimeout(done, 100)
      const clock = this.#clock
      const self = this
      function done (): void {
        clock.clearTimeout(timer)
        self.#wakeReader = undefined
        resolve()
      }
      this.#wakeReader = done
    })
  }

  #sleep (ms: number): Promise<void> {
    return new Promise(resolve => { this.#clock.setTimeout(resolve, ms) })
  }
}

/** An entry as XREADGROUP and XAUTOCLAIM give it (null: deleted since it was added). */
type Entry = [id: string, fields: string[]] | null
