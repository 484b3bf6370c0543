import { readFileSync } from 'node:fs'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createSecureServer, type Http2SecureServer } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { FIXTURES, startNode } from './helpers/child'

// A self-signed certificate for localhost, made for these tests only (openssl, 100 years).
const key = readFileSync(join(FIXTURES, 'localhost-key.pem'))
const cert = readFileSync(join(FIXTURES, 'localhost-cert.pem'))

type AnyServer = HttpsServer | Http2SecureServer

async function serve (make: (handler: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void) => AnyServer):
Promise<{ url: string, versions: string[], connections: () => number, close: () => Promise<void> }> {
  const versions: string[] = []
  let connections = 0
  const server = make((req, res) => {
    versions.push(req.httpVersion)
    req.resume()
    req.on('end', () => res.end('{}'))
  })
  server.on('secureConnection', () => { connections++ })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `https://localhost:${port}`,
    versions,
    connections: () => connections,
    close: async () => { await new Promise(resolve => server.close(resolve)) }
  }
}

const send = async (url: string): Promise<{ code: number | null, stdout: string, stderr: string }> =>
  await startNode([join(FIXTURES, 'https-client.cjs')], { env: { KOALA_BASE_URL: url, NODE_EXTRA_CA_CERTS: join(FIXTURES, 'localhost-cert.pem') } }).exited

test('a server that offers HTTP/2 gets every request as a stream, several to a connection', async () => {
  const server = await serve(handler => createSecureServer({ key, cert, allowHTTP1: true }, handler))
  try {
    const { code, stdout, stderr } = await send(server.url)
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(JSON.parse(stdout)).toMatchObject({ delivered: 40, failed: 0 })
    expect(server.versions).toEqual(Array(40).fill('2.0'))
    // The Pool opens a connection per request still waiting while the first ones negotiate; after that, streams share them.
    expect(server.connections()).toBeLessThan(40)
  } finally {
    await server.close()
  }
})

test('a server that speaks only HTTP/1.1 over TLS gets HTTP/1.1, and everything arrives', async () => {
  const server = await serve(handler => createHttpsServer({ key, cert }, handler))
  try {
    const { code, stdout, stderr } = await send(server.url)
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' })
    expect(JSON.parse(stdout)).toMatchObject({ delivered: 40, failed: 0 })
    expect(server.versions).toEqual(Array(40).fill('1.1'))
  } finally {
    await server.close()
  }
})
