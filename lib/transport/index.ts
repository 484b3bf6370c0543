// The transport part: the tracker's only view of HTTP, and its undici Pool implementation.
export { createPoolTransport, readStart, startExchange } from './transport'
export type { Exchange, PoolTransport, Transport, TransportRequest, TransportResponse } from './transport'
