/**
 * The launch context's public surface (docs/launch.md): a read-only NBD server that
 * serves disk-engine disks (store images) in place, instance types, and instances that
 * boot those disks under QEMU through copy-on-write qcow2 overlays.
 */
export {
  NbdServer,
  nbdUnixUri,
  MAX_EXPORTS,
  type NbdServerEvent,
  type NbdServerOptions,
} from './nbd-server/server.js';
export type { NbdExport } from './nbd-server/handshake.js';
export { INSTANCE_TYPES, CUSTOM_TYPE_LIMITS, instanceType, type InstanceType } from './instance-types.js';
export { launchInstance, type LaunchInstanceOptions } from './instance/launch.js';
export {
  Instance,
  DEFAULT_STOP_TIMEOUT_MS,
  type InstanceExit,
  type InstanceInfo,
  type InstanceState,
  type LaunchTimings,
} from './instance/instance.js';
export {
  BUSES,
  NIC_MODELS,
  MAX_DISKS,
  newInstanceId,
  parseNetwork,
  type DiskBus,
  type Network,
  type PortForward,
  type Firmware,
  type LaunchOptions,
  type NicModel,
} from './instance/options.js';
export { userData, MAX_SEED_PART_BYTES, type SeedContent, type ScriptType } from './instance/seed.js';
export {
  adoptInstance,
  adoptTestInstance,
  adoptStoppedInstance,
  instanceQemu,
  isMaterialized,
  AdoptedInstance,
} from './instance/adopt.js';
export {
  OVMF_CANDIDATES,
  detectAccelerator,
  cpuModel,
  hostMemoryMiB,
  type Accelerator,
  type CpuChoice,
  type OvmfPaths,
} from './instance/host.js';
export {
  consoleProbe,
  tcpProbe,
  httpProbe,
  scriptProbe,
  freeLoopbackPort,
  MAX_CAPTURE_BYTES,
  type ProbeResult,
  type HttpExpectation,
} from './probes.js';
export { HostAgent, type HostAgentOptions, type HostFacts } from './remote/host-agent.js';
