import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { startFakeAgent, type FakeAgentOptions } from '../../../test/helpers/fake-qga.js';
import { tempDir } from '../../../test/helpers/qemu.js';
import {
  GuestAgentChannel,
  guestAgentPath,
  MAX_AGENT_DISCARD_BYTES,
  MAX_AGENT_LINE_BYTES,
} from './guest-agent.js';
import { thawAbandoned, withGuestFrozen, type FreezeOptions } from './guest-freeze.js';

/** A fake agent at a fresh path; `events` gets its commands and the snapshot's "transaction" in order. */
async function fake(o: FakeAgentOptions) {
  const events: string[] = [];
  const agent = await startFakeAgent(join(await tempDir('ferry-qga-'), 'vm.qga'), {
    ...o,
    onCommand: async (cmd, n) => {
      events.push(cmd);
      await o.onCommand?.(cmd, n);
    },
  });
  return { agent, events };
}

const FAST: FreezeOptions = { freezeTimeoutMs: 300, syncTimeoutMs: 300, thawTimeoutMs: 300 };

test('guestAgentPath: NAME.qga next to NAME.qmp', () => {
  assert.equal(guestAgentPath('/run/ferry-qmp/web-1.qmp'), '/run/ferry-qmp/web-1.qga');
  assert.equal(guestAgentPath('/run/q/vm'), '/run/q/vm.qga');
});

test('an agent that freezes: freeze, then the transaction, then thaw; application-consistent', async () => {
  // Stale bytes of an earlier client, a stale answer, even a stale delimited answer: all
  // skipped until the answer with our random id.
  const stale = Buffer.concat([
    Buffer.from('{"return": 5}\n{"retu'),
    Buffer.from([0xff]),
    Buffer.from('{"return": 99}\n'),
  ]);
  const { agent, events } = await fake({ freeze: 'answer', fsCount: 3, stale });
  try {
    let frozenDuring = false;
    const r = await withGuestFrozen(agent.path, async () => {
      events.push('transaction');
      frozenDuring = agent.frozen;
      return 42;
    });
    assert.equal(r.value, 42);
    assert.equal(r.applicationConsistent, true);
    assert.equal(frozenDuring, true, 'the guest was frozen while the transaction ran');
    assert.equal(agent.frozen, false, 'and thawed after');
    assert.deepEqual(events, [
      'guest-sync-delimited',
      'guest-fsfreeze-freeze',
      'transaction',
      'guest-fsfreeze-thaw',
    ]);
    assert.equal(r.warnings.length, 1);
    assert.match(
      r.warnings[0]!,
      /^application-consistent: the guest agent froze 3 file systems for the snapshot/,
    );
  } finally {
    await agent.close();
  }
});

test('freeze fails, freezes nothing, or never answers: thawed anyway, then a crash-consistent snapshot', async () => {
  const cases: [FakeAgentOptions['freeze'], RegExp, string[]][] = [
    [
      'error',
      /^crash-consistent: guest-fsfreeze-freeze failed \(guest agent: guest-fsfreeze-freeze: failed to freeze \/srv/,
      ['guest-sync-delimited', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw', 'transaction'],
    ],
    [
      'zero',
      /^crash-consistent: the guest agent froze no file system/,
      ['guest-sync-delimited', 'guest-fsfreeze-freeze', 'guest-fsfreeze-thaw', 'transaction'],
    ],
    [
      'hang',
      /^crash-consistent: guest-fsfreeze-freeze did not finish within 0\.3 s/,
      // After the timeout the stream is out of step: a new sync before the thaw.
      [
        'guest-sync-delimited',
        'guest-fsfreeze-freeze',
        'guest-sync-delimited',
        'guest-fsfreeze-thaw',
        'transaction',
      ],
    ],
  ];
  for (const [freeze, warning, order] of cases) {
    const { agent, events } = await fake({ freeze });
    try {
      const t0 = Date.now();
      const r = await withGuestFrozen(agent.path, async () => void events.push('transaction'), FAST);
      assert.equal(r.applicationConsistent, false, freeze);
      assert.match(r.warnings[0] ?? '', warning);
      assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
      assert.deepEqual(events, order, freeze);
      assert.equal(agent.frozen, false, `${freeze}: thawed`);
      assert.ok(Date.now() - t0 < 2000, `${freeze}: bounded`);
    } finally {
      await agent.close();
    }
  }
});

test('the thaw is retried once on a new connection; when both fail the warning says the guest may be frozen', async () => {
  const once = await fake({ freeze: 'answer', thaw: 'error-once' });
  try {
    const r = await withGuestFrozen(once.agent.path, async () => void once.events.push('transaction'), FAST);
    assert.equal(r.applicationConsistent, true);
    assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
    assert.deepEqual(once.events, [
      'guest-sync-delimited',
      'guest-fsfreeze-freeze',
      'transaction',
      'guest-fsfreeze-thaw',
      'guest-sync-delimited',
      'guest-fsfreeze-thaw',
    ]);
    assert.deepEqual(once.agent.connections, [1, 1, 1, 2, 2], 'the retry used a second connection');
    assert.equal(once.agent.frozen, false);
  } finally {
    await once.agent.close();
  }

  const stuck = await fake({ freeze: 'answer', thaw: 'hang' });
  const warned: string[] = [];
  try {
    const t0 = Date.now();
    const r = await withGuestFrozen(stuck.agent.path, async () => 'ok', {
      ...FAST,
      log: { warn: (_o, msg) => warned.push(msg) },
    });
    assert.equal(r.value, 'ok');
    assert.equal(r.applicationConsistent, true, 'the snapshot itself was taken frozen');
    assert.match(r.warnings[1] ?? '', /did not confirm guest-fsfreeze-thaw .*may still be frozen/);
    assert.equal(warned.length, 1);
    assert.equal(stuck.events.filter((e) => e === 'guest-fsfreeze-thaw').length, 2);
    assert.ok(Date.now() - t0 < 3000, 'bounded');
  } finally {
    await stuck.agent.close();
  }
});

test('the transaction fails while frozen: thawed all the same, and the error is the transaction’s', async () => {
  const { agent, events } = await fake({ freeze: 'answer' });
  try {
    await assert.rejects(
      withGuestFrozen(agent.path, async () => {
        events.push('transaction');
        throw new Error('transaction refused');
      }),
      /transaction refused/,
    );
    assert.deepEqual(events, [
      'guest-sync-delimited',
      'guest-fsfreeze-freeze',
      'transaction',
      'guest-fsfreeze-thaw',
    ]);
    assert.equal(agent.frozen, false);
  } finally {
    await agent.close();
  }
});

test('no agent: no socket, or a channel nobody answers on — crash-consistent, nothing frozen, bounded', async () => {
  const dir = await tempDir('ferry-qga-');
  const none = await withGuestFrozen(join(dir, 'none.qga'), async () => 1);
  assert.equal(none.applicationConsistent, false);
  assert.match(none.warnings[0] ?? '', /^crash-consistent: no guest agent channel .*none\.qga/);

  // What QEMU's chardev is when the guest runs no qemu-ga: it accepts, and nothing answers.
  const { agent, events } = await fake({ freeze: 'answer', silent: true });
  try {
    const t0 = Date.now();
    const r = await withGuestFrozen(agent.path, async () => void events.push('transaction'), FAST);
    assert.match(
      r.warnings[0] ?? '',
      /^crash-consistent: the guest agent did not answer guest-sync-delimited/,
    );
    assert.deepEqual(events, ['guest-sync-delimited', 'transaction'], 'no freeze was asked for');
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    await agent.close();
  }
});

test('hostile agents: endless bytes before the delimiter, an endless line, a non-QMP answer — coded, bounded', async () => {
  const dir = await tempDir('ferry-qga-');
  const serve = async (name: string, onData: (s: Socket, text: string) => void) => {
    const path = join(dir, name);
    const server = createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (d: Buffer) => onData(s, d.toString('latin1')));
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
    return { path, close: () => new Promise<void>((r) => server.close(() => r())) };
  };
  const junk = Buffer.alloc(256 * 1024, 0x41);
  const flood = await serve('flood.qga', (s) => {
    for (let i = 0; i < (MAX_AGENT_DISCARD_BYTES * 2) / junk.length; i++) s.write(junk);
  });
  const longLine = await serve('long.qga', (s) => {
    s.write(Buffer.from([0xff]));
    for (let i = 0; i < (MAX_AGENT_LINE_BYTES * 2) / 1024; i++) s.write(Buffer.alloc(1024, 0x41));
  });
  const notQmp = await serve('notqmp.qga', (s, text) => {
    const id = /"id":(\d+)/.exec(text)?.[1];
    if (id) s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${id}}\n`)]));
    else s.write('[1,2,3]\n');
  });
  try {
    for (const [p, code] of [
      [flood.path, 'FERRY_QMP_MESSAGE_TOO_LARGE'],
      [longLine.path, 'FERRY_QMP_MESSAGE_TOO_LARGE'],
    ] as const) {
      const ch = await GuestAgentChannel.connect(p, 1000);
      await assert.rejects(ch.sync(5000), (e: { code?: string }) => e.code === code);
      ch.close();
      const r = await withGuestFrozen(p, async () => 'taken', FAST);
      assert.equal(r.value, 'taken');
      assert.match(
        r.warnings[0] ?? '',
        /^crash-consistent: the guest agent did not answer guest-sync-delimited/,
      );
    }
    const ch = await GuestAgentChannel.connect(notQmp.path, 1000);
    await ch.sync(1000);
    await assert.rejects(
      ch.execute('guest-fsfreeze-freeze', 1000),
      (e: { code?: string }) => e.code === 'FERRY_QMP_PROTOCOL_ERROR',
    );
    assert.equal(ch.needsSync, true);
    ch.close();
  } finally {
    await flood.close();
    await longLine.close();
    await notQmp.close();
  }
});

test('thawAbandoned: thaws a guest an interrupted snapshot left frozen; no channel, nothing to do', async () => {
  const { agent, events } = await fake({ freeze: 'answer' });
  try {
    const ch = await GuestAgentChannel.connect(agent.path, 1000);
    await ch.sync(1000);
    assert.equal(await ch.execute('guest-fsfreeze-freeze', 1000), 2);
    ch.close(); // the process that froze it is gone
    assert.equal(agent.frozen, true);
    assert.equal(await thawAbandoned(agent.path), true);
    assert.equal(agent.frozen, false);
    assert.deepEqual(events.slice(-2), ['guest-sync-delimited', 'guest-fsfreeze-thaw']);
  } finally {
    await agent.close();
  }
  assert.equal(await thawAbandoned(join(await tempDir('ferry-qga-'), 'none.qga')), false);
});
