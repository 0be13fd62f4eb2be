/**
 * Time-ordered ids for events and deliveries: 12 hex digits of epoch milliseconds, a
 * 4-digit per-process counter, and 6 random hex digits. Sorting ids sorts by time (ties
 * within one millisecond of one process keep their order), so the log pages by id alone,
 * and receivers can dedupe on the id.
 */
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

export function timeOrderedId(prefix: string, nowMs: number): string {
  if (nowMs === lastMs) counter = (counter + 1) & 0xffff;
  else {
    lastMs = nowMs;
    counter = 0;
  }
  const ms = Math.max(0, Math.floor(nowMs)).toString(16).padStart(12, '0');
  return `${prefix}-${ms}${counter.toString(16).padStart(4, '0')}${randomBytes(3).toString('hex')}`;
}

export const newEventId = (now: number) => timeOrderedId('evt', now);
export const newDeliveryId = (now: number) => timeOrderedId('whd', now);
