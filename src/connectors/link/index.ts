/**
 * Remote connectors over the link (src/link, docs/connector-protocol.md): the agent end
 * serving a local connector, the server end presenting it to the control plane as a
 * Connector.
 */
export { serveConnector, INVENTORY_PAGE } from './agent.js';
export { RemoteConnector, RECONNECT_WAIT_MS, type RemoteRoles } from './remote.js';
export { runLink } from './client.js';
