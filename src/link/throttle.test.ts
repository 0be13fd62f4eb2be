import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BandwidthSchedule, Throttle } from './throttle.js';

const at = (day: number, hh: number, mm = 0) => new Date(2026, 10, 22 + day, hh, mm); // 2026-11-22 is a Sunday

test('a bandwidth schedule: the first entry covering local time wins, else the default', () => {
  const s = new BandwidthSchedule(
    '50M',
    'Mon-Fri 08:00-18:00=10M; Sat,Sun 00:00-24:00=unlimited; Fri 18:00-20:00=1G',
  );
  assert.equal(s.rateAt(at(1, 9)), 10 * 1024 ** 2); // Monday 09:00
  assert.equal(s.rateAt(at(1, 18)), 50 * 1024 ** 2); // Monday 18:00: outside [08:00, 18:00)
  assert.equal(s.rateAt(at(5, 19, 30)), 1024 ** 3); // Friday evening
  assert.equal(s.rateAt(at(0, 12)), undefined); // Sunday: unlimited
  assert.equal(s.rateAt(at(6, 3)), undefined); // Saturday
  assert.equal(new BandwidthSchedule().limited, false);
  assert.equal(new BandwidthSchedule(undefined, '* 00:00-06:00=800K').rateAt(at(3, 5)), 800 * 1024);
});

test('bad schedules and rates are refused with coded errors', () => {
  for (const [rate, schedule] of [
    ['1K', undefined],
    ['fast', undefined],
    [undefined, 'Mon-Fri 08:00-18:00'],
    [undefined, 'Someday 08:00-18:00=1M'],
    [undefined, 'Mon 25:00-26:00=1M'],
    [undefined, 'Mon 08:00-09:00=0'],
  ] as const) {
    assert.throws(() => new BandwidthSchedule(rate, schedule), { code: 'FERRY_INVALID_ARGUMENT' });
  }
});

test('the throttle paces bytes to the rate (one second of burst at most)', async () => {
  const t = new Throttle(new BandwidthSchedule('256K'));
  const started = Date.now();
  for (let i = 0; i < 4; i++) await t.take(128 * 1024); // 512 KiB at 256 KiB/s
  const took = Date.now() - started;
  assert.ok(took >= 1700 && took < 4000, `took ${took} ms`);
  const free = new Throttle(new BandwidthSchedule());
  const t0 = Date.now();
  await free.take(1 << 30);
  assert.ok(Date.now() - t0 < 100);
});
