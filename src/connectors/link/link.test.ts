/**
 * The link end to end over real loopback sockets (TLS is the listener's business): a
 * folder connector served by the agent, used through a RemoteConnector — inventory,
 * whole-disk reads identical to local ones, a link dropped mid-read and resumed on a new
 * one, and hostile frames closing the link with coded errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { makeImagesDir } from '../../../test/helpers/fixtures.js';
import { createFolderConnector } from '../folder/connector.js';
import { FrameDecoder, MAX_BODY } from '../../link/index.js';
import { LinkPeer } from '../../link/index.js';
import { RemoteConnector } from './remote.js';
import { serveConnector } from './agent.js';
import { rejectsWith } from '../../../test/helpers/errors.js';

/** A connected socket pair on loopback. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const client = connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', () => r()));
  const s = await accepted;
  server.close();
  return [client, s];
}

async function sha(d: { virtualSize: number; read(o: number, l: number): Promise<Buffer> }) {
  const h = createHash('sha256');
  for (let at = 0; at < d.virtualSize; at += 1 << 20)
    h.update(await d.read(at, Math.min(1 << 20, d.virtualSize - at)));
  return h.digest('hex');
}

async function setup() {
  const images = await makeImagesDir(2, 3 << 20);
  const local = await createFolderConnector({ connectorId: 'c-remote', imagesDir: images, version: 't' });
  const remote = new RemoteConnector(
    { ...local.descriptor, kind: 'remote' },
    { reconnectWaitMs: 5000, roles: {} },
  );
  const links: { agent: LinkPeer; server: LinkPeer }[] = [];
  const connectLink = async () => {
    const [a, b] = await pair();
    const served = serveConnector(local);
    const agent = new LinkPeer(a, { handlers: served.handlers, compress: true });
    agent.onClose(() => void served.closeAll());
    const server = new LinkPeer(b, { compress: true });
    remote.attach(server);
    links.push({ agent, server });
    return { agent, server };
  };
  return { local, remote, connectLink, links };
}

test('a remote folder connector: inventory and disks read exactly as locally', async () => {
  const { local, remote, connectLink, links } = await setup();
  await connectLink();
  const servers = await remote.inventory.collect();
  assert.deepEqual(servers, await local.inventory.collect());
  for (const s of servers) {
    const [l, r] = [await local.source.openDisk(s.vmId, 0), await remote.source.openDisk(s.vmId, 0)];
    assert.equal(r.virtualSize, l.virtualSize);
    const [lm, rm] = [[] as unknown[], [] as unknown[]];
    for await (const e of l.map()) lm.push([e.offset, e.length, e.kind]);
    for await (const e of r.map()) rm.push([e.offset, e.length, e.kind]);
    assert.deepEqual(rm, lm);
    assert.equal(await sha(r), await sha(l));
    await Promise.all([l.close(), r.close()]);
  }
  for (const l of links) l.agent.close();
});

test('a link dropped mid-read: the read waits for the reconnection and the disk reads on', async () => {
  const { local, remote, connectLink, links } = await setup();
  const first = await connectLink();
  const [s] = await remote.inventory.collect();
  const disk = await remote.source.openDisk(s!.vmId, 0);
  const localDisk = await local.source.openDisk(s!.vmId, 0);
  const want = await sha(localDisk);
  await localDisk.close();
  const h = createHash('sha256');
  for (let at = 0, i = 0; at < disk.virtualSize; at += 1 << 20, i++) {
    if (i === 1) {
      first.agent.close(); // the connection drops
      setTimeout(() => void connectLink(), 300); // and the connector comes back
    }
    h.update(await disk.read(at, Math.min(1 << 20, disk.virtualSize - at)));
  }
  assert.equal(h.digest('hex'), want);
  await disk.close();
  for (const l of links) l.agent.close();
});

test('a connector that does not come back fails the call with FERRY_LINK_DOWN, bounded', async () => {
  const { remote, connectLink } = await setup();
  const link = await connectLink();
  link.agent.close();
  const quick = new RemoteConnector(remote.descriptor, { reconnectWaitMs: 200 });
  const started = Date.now();
  // The wait's timer does not hold the process open (a server has its listener for that).
  const alive = setInterval(() => undefined, 1000);
  await rejectsWith(quick.inventory.collect(), 'FERRY_LINK_DOWN');
  clearInterval(alive);
  assert.ok(Date.now() - started < 3000);
  link.server.close();
});

test('hostile frames close the link with coded errors; unknown methods answer coded errors', async () => {
  const d = new FrameDecoder();
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(16, 0);
  huge.writeUInt32BE(MAX_BODY + 1, 4);
  assert.throws(() => d.push(huge), { code: 'FERRY_LINK_MESSAGE_TOO_LARGE' });
  const bad = Buffer.concat([Buffer.from([0, 0, 0, 3, 0, 0, 0, 0]), Buffer.from('{x}')]);
  assert.throws(() => new FrameDecoder().push(bad), { code: 'FERRY_LINK_PROTOCOL_ERROR' });

  const [a, b] = await pair();
  const agent = new LinkPeer(a, {
    handlers: { 'never.answered': () => new Promise<never>(() => undefined) },
  });
  const server = new LinkPeer(b);
  await rejectsWith(server.call('no.such.method', {}), 'FERRY_LINK_PROTOCOL_ERROR');
  // Garbage on the wire: the receiving end closes, pending calls fail at once.
  const pending = server.call('never.answered', {}, undefined, { timeoutMs: 60_000 });
  a.write(Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]));
  await rejectsWith(pending, 'FERRY_LINK_DOWN');
  assert.equal(agent.closed || server.closed, true);
  agent.close();
  server.close();
});
