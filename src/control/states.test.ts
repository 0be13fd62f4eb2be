import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  JOB_STATES,
  JOB_TRANSITIONS,
  RUN_STATES,
  RUN_TRANSITIONS,
  jobStatesBefore,
  runStatesBefore,
} from './states.js';

function reachable<S extends string>(from: S, table: Readonly<Record<S, readonly S[]>>): Set<S> {
  const seen = new Set<S>([from]);
  const todo = [from];
  while (todo.length) {
    for (const n of table[todo.pop() as S]) {
      if (!seen.has(n)) {
        seen.add(n);
        todo.push(n);
      }
    }
  }
  return seen;
}

test('job states: every SMS state is reachable from PENDING, DELETED is terminal and reachable from everywhere', () => {
  assert.deepEqual([...reachable('PENDING', JOB_TRANSITIONS)].sort(), [...JOB_STATES].sort());
  assert.deepEqual(JOB_TRANSITIONS.DELETED, []);
  for (const s of JOB_STATES) assert.ok(reachable(s, JOB_TRANSITIONS).has('DELETED'), `${s} can be deleted`);
});

test('run states: every SMS state is reachable from PENDING; finished runs never become ACTIVE again', () => {
  assert.deepEqual([...reachable('PENDING', RUN_TRANSITIONS)].sort(), [...RUN_STATES].sort());
  for (const s of ['COMPLETED', 'FAILED', 'MISSED', 'DELETED'] as const) {
    assert.ok(!reachable(s, RUN_TRANSITIONS).has('ACTIVE'), s);
  }
});

test('compare-and-set guards are the states a move may come from', () => {
  assert.deepEqual(jobStatesBefore('COMPLETED'), ['ACTIVE']);
  assert.ok(!jobStatesBefore('ACTIVE').includes('DELETING'));
  assert.deepEqual(runStatesBefore('COMPLETED'), ['ACTIVE']);
});
