import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Express } from 'express'
import { Agent, request } from 'undici'

type ExpressFactory = () => Express

/** Express 5 (the dev dependency `express`) and Express 4 (the npm alias `express4`): every Express test runs on both. */
export const EXPRESS_VERSIONS: Array<[string, ExpressFactory]> = [
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  [`express ${(require('express/package.json') as { version: string }).version}`, require('express') as ExpressFactory],
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  [`express ${(require('express4/package.json') as { version: string }).version}`, require('express4') as ExpressFactory]
]

export interface Running {
  url: string
  server: Server
  agent: Agent
  get(path: string, headers?: Record<string, string>): Promise<Reply>
  post(path: string, headers?: Record<string, string>): Promise<Reply>
  close(): Promise<void>
}

export interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: string, setCookie: string[] }

/** Listens on 127.0.0.1 and returns a small undici client for it. */
export async function listen (app: Express): Promise<Running> {
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', (err?: Error) => { if (err !== undefined) reject(err); else resolve(s) })
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const agent = new Agent({ connections: 64 })
  const send = async (method: 'GET' | 'POST', path: string, headers: Record<string, string> = {}): Promise<Reply> => {
    const r = await request(url + path, { method, headers, dispatcher: agent })
    const body = await r.body.text()
    const raw = r.headers['set-cookie']
    return { status: r.statusCode, headers: r.headers, body, setCookie: raw === undefined ? [] : Array.isArray(raw) ? raw : [raw] }
  }
  return {
    url,
    server,
    agent,
    get: async (path, headers) => await send('GET', path, headers),
    post: async (path, headers) => await send('POST', path, headers),
    async close () {
      await agent.close()
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** The ko_id a Set-Cookie list sets, if any. */
export function koIdFrom (setCookie: string[]): string | undefined {
  for (const c of setCookie) {
    const m = /^ko_id=([^;]*)/.exec(c)
    if (m !== null) return m[1]
  }
  return undefined
}
