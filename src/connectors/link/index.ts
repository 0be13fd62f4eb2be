/**
 * The connector link (docs/connector-protocol.md): framed, compressed calls over mutual
 * TLS between `ferry server` and remote connectors — the agent end serving a local
 * connector, the remote end presenting it to the control plane as a Connector.
 */
export { LinkPeer, type Handler, type PeerOptions } from './peer.js';
export { serveConnector, type AgentState } from './agent.js';
export { RemoteConnector, RECONNECT_WAIT_MS } from './remote.js';
export { encodeFrame, FrameDecoder, MAX_BODY, MAX_HEADER } from './frames.js';
export {
  enrol,
  runLink,
  HEARTBEAT_MS,
  type LinkIdentity,
  type LinkTarget,
  type ClientLog,
} from './client.js';
export { BandwidthSchedule, Throttle, throttled, MIN_RATE } from './throttle.js';
