/**
 * Ferry's extension operations (model/ferry/) bound to the control plane, like
 * operations.ts does for SMS. Inputs arrive validated against the extension model.
 */
import type { ControlPlane } from '../control/index.js';
import type { OperationInput, OperationTable } from './server.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type In = any;
const as = (i: OperationInput): In => i;

export function bindFerryOperations(c: ControlPlane): OperationTable {
  return {
    // Instances (docs/launch.md)
    ListInstances: (i) => c.instances.list(as(i)),
    GetInstanceConsole: (i) => c.instances.console(as(i)),
  };
}
