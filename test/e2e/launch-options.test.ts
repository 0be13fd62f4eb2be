/**
 * Per-server boot settings through a real `ferry server`: firmware and MAC come from the
 * source's facts (a VMX with firmware="efi" and a NIC address), the operator overrides bus,
 * NIC model and MAC with `ferry apps options`, and QEMU boots with exactly those.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SMS } from '@aws-sdk/client-sms';
import { ferry, pseudoRandom, qemuImg, tempDir } from '../helpers/qemu.js';
import { startServer, type RunningServer } from '../helpers/server.js';
import { smsClient } from '../helpers/sms.js';
import { oneServerApp, replicate, settledLaunch } from '../helpers/apps.js';

let server: RunningServer;
let sms: SMS;
let env: NodeJS.ProcessEnv;

before(async () => {
  const images = await tempDir('ferry-options-');
  await mkdir(join(images, 'legacy'));
  await writeFile(join(images, 'legacy', 'disk.raw'), pseudoRandom(1 << 20, 5));
  await qemuImg(
    'convert',
    '-f',
    'raw',
    '-O',
    'vmdk',
    join(images, 'legacy', 'disk.raw'),
    join(images, 'legacy', 'disk.vmdk'),
  );
  await writeFile(join(images, 'legacy', 'disk.raw'), '');
  await writeFile(
    join(images, 'legacy', 'legacy.vmx'),
    [
      '.encoding = "UTF-8"',
      'displayName = "legacy"',
      'firmware = "efi"',
      'numvcpus = "1"',
      'memsize = "256"',
      'scsi0.present = "TRUE"',
      'scsi0:0.present = "TRUE"',
      'scsi0:0.fileName = "disk.vmdk"',
      'ethernet0.present = "TRUE"',
      'ethernet0.address = "00:50:56:AA:BB:CC"',
      '',
    ].join('\n'),
  );
  server = await startServer({ imagesDir: images, args: ['--frequency-unit', 'minutes'] });
  sms = smsClient(server);
  env = { FERRY_ENDPOINT: server.url, FERRY_ACCESS_KEY_FILE: join(server.dataDir, 'admin-credentials.json') };
});

after(async () => {
  sms?.destroy();
  await server?.stop();
});

async function cli(args: string[]) {
  const r = await ferry(args, { env, timeoutMs: 120_000 });
  assert.equal(r.code, 0, `ferry ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function launched(appId: string): Promise<{ status: string; message: string; id?: string }> {
  const s = await settledLaunch(sms, appId);
  return { status: s.launchStatus!, message: s.launchStatusMessage ?? '', id: s.launchDetails?.stackId };
}

test('firmware and MAC from the source facts; bus, NIC and MAC overridden; QEMU runs with them', async () => {
  const serverId = (await sms.getServers({})).serverList![0]!.serverId!;
  await replicate(sms, serverId, 120_000);
  const appId = await oneServerApp(sms, 'legacy', serverId);

  // The facts say UEFI: without OVMF on this host the launch fails and says why.
  const shown = JSON.parse(await cli(['apps', 'options', appId, '--json'])) as {
    resolved: Record<string, string>;
  }[];
  assert.equal(shown[0]!.resolved.firmware, 'uefi');
  await sms.launchApp({ appId });
  const failed = await launched(appId);
  if (failed.status === 'LAUNCH_FAILED') assert.match(failed.message, /FERRY_LAUNCH_FIRMWARE_MISSING|OVMF/);
  else await sms.terminateApp({ appId }); // a host with OVMF boots it with UEFI

  // Overrides: BIOS, SATA disks, an e1000 NIC with the source's MAC.
  const table = await cli([
    'apps',
    'options',
    appId,
    serverId,
    '--firmware',
    'bios',
    '--bus',
    'sata',
    '--nic',
    'e1000',
    '--preserve-mac',
  ]);
  assert.match(table, /bios\s+sata\s+e1000\s+user\s+00:50:56:aa:bb:cc/);
  await sms.launchApp({ appId });
  const ok = await launched(appId);
  assert.equal(ok.status, 'LAUNCHED', ok.message);
  const dir = join(server.dataDir, 'instances', ok.id!);
  const pid = Number((await readFile(join(dir, 'qemu.pid'), 'utf8')).trim());
  const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
  assert.match(cmdline, /-device ahci,id=ahci0/);
  assert.match(cmdline, /model=e1000,mac=00:50:56:aa:bb:cc/);
  assert.doesNotMatch(cmdline, /pflash/);

  const bad = await ferry(['apps', 'options', appId, serverId, '--network', 'bridge:br0'], { env });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /FERRY_INVALID_ARGUMENT.*tap:IFNAME/);
  await sms.terminateApp({ appId });
});
