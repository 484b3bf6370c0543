// The transport part: the tracker's only view of HTTP, and its undici Pool implementation.
export { createPoolTransport, readStart } from './transport'
export type { Transport, TransportRequest, TransportResponse } from './transport'
