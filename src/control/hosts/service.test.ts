/**
 * Remote launch hosts on the server side (hosts/service.ts), on a real database and real
 * sockets: host enrolment and certificates, what a host may read (only the images of its
 * own live instances), placement, and reconciliation of what a host says it runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { createServer, connect, type Socket } from 'node:net';
import { openTestDatabase } from '../../../test/helpers/databases.js';
import { repositories, type InstanceRecord } from '../../db/index.js';
import { LinkPeer } from '../../link/index.js';
import { ManualClock } from '../clock.js';
import { EnrolmentService } from '../enrolment.js';
import { InstanceHost } from '../instance-host.js';
import { ensureTlsMaterial, loadCa } from '../pki/material.js';
import { tempDir } from '../../../test/helpers/qemu.js';
import { HostService } from './service.js';

async function socketPair(): Promise<[Socket, Socket]> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => srv.once('connection', r));
  const client = connect(port, '127.0.0.1');
  const server = await accepted;
  srv.close();
  return [client, server];
}

function instance(id: string, hostId: string | null, imageId: string, state = 'running'): InstanceRecord {
  return {
    instanceId: id,
    appId: null,
    serverId: 's-1',
    imageId,
    instanceType: 't3.micro',
    state,
    statusMessage: '',
    dir: `${hostId}:${id}`,
    pid: null,
    launchOrder: null,
    hostId,
    createdAt: 1,
    updatedAt: 1,
  };
}

test('a host token enrols a launch host (h- id, its own certificate); a disassociated host is refused', async () => {
  const t = await openTestDatabase('sqlite');
  try {
    const clock = new ManualClock(Date.now());
    const enrolment = new EnrolmentService(t.db, clock);
    const tls = await tempDir('ferry-hosts-tls-');
    await ensureTlsMaterial(tls, '127.0.0.1');
    const ca = await loadCa(tls);
    const { enrolmentToken, role } = await enrolment.createEnrolmentToken({ role: 'host' });
    assert.equal(role, 'host');
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const out = await enrolment.enrol(ca, {
      token: enrolmentToken,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      descriptor: { name: 'rack-7', version: '1' },
    });
    assert.match(out.id, /^h-[0-9a-f]{17}$/);
    assert.equal(out.role, 'host');
    assert.equal(out.connectorId, undefined, 'not a connector');
    const cert = new X509Certificate(out.certPem);
    assert.deepEqual(await enrolment.peerOf(cert), { role: 'host', id: out.id });
    // The token was single use.
    await assert.rejects(
      enrolment.enrol(ca, {
        token: enrolmentToken,
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
        descriptor: {},
      }),
      { code: 'FERRY_ENROLMENT_REFUSED' },
    );
    const hosts = new HostService(t.db, clock, undefined);
    assert.deepEqual(
      (await hosts.list()).hosts.map((h) => [h.hostId, h.name, h.connected]),
      [[out.id, 'rack-7', false]],
    );
    await hosts.disassociate(out.id);
    await assert.rejects(enrolment.peerOf(cert), { code: 'FERRY_ENROLMENT_REFUSED' });
    assert.deepEqual((await hosts.list()).hosts, []);
    // A connector token still makes connectors.
    const c = await enrolment.createEnrolmentToken({});
    const conn = await enrolment.enrol(ca, {
      token: c.enrolmentToken,
      publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }),
      descriptor: {},
    });
    assert.match(conn.id, /^c-/);
    assert.equal(conn.connectorId, conn.id);
  } finally {
    await t.close();
  }
});

test('a host reads only the images of its own live instances', async () => {
  const t = await openTestDatabase('sqlite');
  try {
    const r = repositories(t.db);
    await r.instances.insert(instance('i-00000000000000001', 'h-00000000000000001', 'ami-00000000000000001'));
    await r.instances.insert(
      instance('i-00000000000000002', 'h-00000000000000001', 'ami-00000000000000002', 'terminated'),
    );
    await r.instances.insert(instance('i-00000000000000003', null, 'ami-00000000000000003'));
    const hosts = new HostService(t.db, new ManualClock(), undefined);
    const mine = hosts.serve('h-00000000000000001').handlers['image.open']!;
    const other = hosts.serve('h-00000000000000009').handlers['image.open']!;
    const refused = { code: 'FERRY_NOT_FOUND' };
    const ask = (id: string, ami: string, index: unknown = 0) =>
      ({ instanceId: id, imageId: ami, index }) as Record<string, unknown>;
    // Another host's instance, another image, a terminated instance, a local instance, no index.
    await assert.rejects(
      other(ask('i-00000000000000001', 'ami-00000000000000001'), Buffer.alloc(0)),
      refused,
    );
    await assert.rejects(mine(ask('i-00000000000000001', 'ami-00000000000000003'), Buffer.alloc(0)), refused);
    await assert.rejects(mine(ask('i-00000000000000002', 'ami-00000000000000002'), Buffer.alloc(0)), refused);
    await assert.rejects(mine(ask('i-00000000000000003', 'ami-00000000000000003'), Buffer.alloc(0)), refused);
    await assert.rejects(
      mine(ask('i-00000000000000001', 'ami-00000000000000001', -1), Buffer.alloc(0)),
      refused,
    );
    await assert.rejects(mine({ instanceId: 5 }, Buffer.alloc(0)), { code: 'FERRY_INVALID_ARGUMENT' });
  } finally {
    await t.close();
  }
});

test('placement: local by default, a named host only while connected; hello reconciles its instances', async () => {
  const t = await openTestDatabase('sqlite');
  const [a, b] = await socketPair();
  try {
    const clock = new ManualClock(Date.now());
    const r = repositories(t.db);
    const hostId = 'h-0000000000000000a';
    await r.launchHosts.insert({
      hostId,
      name: 'far',
      version: '1',
      facts: {},
      ipAddress: null,
      certSerial: '01',
      enrolledAt: 1,
      lastHeartbeatAt: 1,
      disassociatedAt: null,
    });
    await r.instances.insert(instance('i-0000000000000000a', hostId, 'ami-0000000000000000a'));
    await r.instances.insert(instance('i-0000000000000000b', hostId, 'ami-0000000000000000a'));
    const hosts = new HostService(t.db, clock, undefined);
    const registry = new InstanceHost(t.db, clock);
    hosts.bind(registry);
    assert.equal(await hosts.place(undefined), undefined);
    assert.equal(await hosts.place('local'), undefined);
    assert.equal(await hosts.place('auto'), undefined, 'no host connected: this machine');
    await assert.rejects(hosts.place(hostId), { code: 'FERRY_LAUNCH_HOST_UNAVAILABLE' });
    await assert.rejects(hosts.place('h-ffffffffffffffff0'), { code: 'FERRY_NOT_FOUND' });

    const terminated: string[] = [];
    // The host's end: it answers terminate calls (for what the server says is gone).
    const hostEnd = new LinkPeer(b, {
      handlers: {
        'instance.terminate': async (p) => {
          terminated.push(String(p.instanceId));
          return { result: { state: 'terminated' } };
        },
      },
    });
    const serverEnd = new LinkPeer(a, {});
    await hosts.attach(
      hostId,
      {
        name: 'far',
        facts: { cpus: 4, memoryMiB: 8192, accelerator: 'kvm', cpuModel: 'host', qemu: true },
        // It runs 0a, not 0b; and 0c, which the server never placed there.
        instances: [
          { instanceId: 'i-0000000000000000a', state: 'running' },
          { instanceId: 'i-0000000000000000c', state: 'running' },
        ],
      },
      serverEnd,
      '127.0.0.1',
    );
    assert.equal((await hosts.place('auto'))?.hostId, hostId);
    assert.equal((await hosts.place(hostId))?.hostId, hostId);
    assert.equal((await r.instances.get('i-0000000000000000a'))!.state, 'running');
    assert.ok(registry.live('i-0000000000000000a'), 'taken back after a server restart');
    const gone = (await r.instances.get('i-0000000000000000b'))!;
    assert.equal(gone.state, 'terminated');
    assert.match(gone.statusMessage, /no longer runs it/);
    for (let i = 0; i < 50 && terminated.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(terminated, ['i-0000000000000000c'], 'an instance the server does not know is ended');
    const [listed] = (await hosts.list()).hosts;
    assert.equal(listed!.connected, true);
    assert.deepEqual(listed!.facts, {
      cpus: 4,
      memoryMiB: 8192,
      accelerator: 'kvm',
      cpuModel: 'host',
      qemu: true,
    });
    assert.equal(listed!.instances, 1);
    hostEnd.close();
  } finally {
    a.destroy();
    b.destroy();
    await t.close();
  }
});
