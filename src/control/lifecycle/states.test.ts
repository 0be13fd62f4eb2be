import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ACTION_FROM, LIFECYCLE_ACTIONS, LIFECYCLE_STATES, LIFECYCLE_TRANSITIONS } from './states.js';

test('every state has a row; every move names known states', () => {
  assert.deepEqual(Object.keys(LIFECYCLE_TRANSITIONS).sort(), [...LIFECYCLE_STATES].sort());
  for (const [from, tos] of Object.entries(LIFECYCLE_TRANSITIONS)) {
    for (const to of tos) assert.ok(LIFECYCLE_STATES.includes(to), `${from} → ${to}`);
    assert.ok(!tos.includes(from as never), `${from} lists itself (progress updates need no row)`);
  }
});

test('each action starts only from states that can reach somewhere', () => {
  assert.deepEqual(Object.keys(ACTION_FROM).sort(), [...LIFECYCLE_ACTIONS].sort());
  for (const [action, froms] of Object.entries(ACTION_FROM)) {
    assert.ok(froms.length > 0, action);
    for (const f of froms) assert.ok(LIFECYCLE_TRANSITIONS[f].length > 0, `${action} from dead end ${f}`);
  }
  // The lifecycle can be walked from start to end.
  const path = [
    'READY_FOR_TESTING',
    'TEST_IN_PROGRESS',
    'READY_FOR_CUTOVER',
    'CUTOVER_IN_PROGRESS',
    'CUTOVER_COMPLETE',
    'FINALIZED',
    'ARCHIVED',
  ] as const;
  for (let i = 1; i < path.length; i++) {
    assert.ok(LIFECYCLE_TRANSITIONS[path[i - 1]!].includes(path[i]!), `${path[i - 1]} → ${path[i]}`);
  }
});
