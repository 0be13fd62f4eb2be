/**
 * A process that takes one KVM snapshot and exits, for tests that kill the process taking
 * it at a chosen moment (e.g. while the guest is frozen).
 * Usage: node kvm-snapshot-child.js QMP_DIR STATE_DIR VM_ID RUN_ID
 */
import { createKvmConnector } from '../../src/connectors/kvm/index.js';

const [qmpDir, stateDir, vmId, runId] = process.argv.slice(2);
if (!qmpDir || !stateDir || !vmId || !runId) {
  process.stderr.write('usage: kvm-snapshot-child QMP_DIR STATE_DIR VM_ID RUN_ID\n');
  process.exit(2);
}
const c = await createKvmConnector({ connectorId: 'child', version: '0', qmpDir, stateDir });
const s = await c.source.snapshot!(vmId, { runId });
process.stdout.write(`${JSON.stringify(s)}\n`);
