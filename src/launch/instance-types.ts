/**
 * Instance types: how many vCPUs and how much memory an instance gets. Named types carry
 * the EC2 names and sizes (https://aws.amazon.com/ec2/instance-types/), so launch
 * templates written for AWS SMS/MGN keep their meaning; any other shape is
 * `custom:<vCPUs>x<MiB>` (e.g. `custom:1x256`). docs/launch.md has the table.
 *
 * EC2's burst credits, network and EBS bandwidth have no QEMU equivalent and are not
 * modelled: a type is only `-smp` and `-m`.
 */
import { InstanceTypeInvalidError } from '../errors/index.js';

export interface InstanceType {
  /** `t3.micro`, or `custom:2x4096`. */
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
}

const GiB = 1024;

/** name, vCPUs, memory in GiB (as EC2 lists them). */
const TABLE: readonly (readonly [string, number, number])[] = [
  ['t2.nano', 1, 0.5],
  ['t2.micro', 1, 1],
  ['t2.small', 1, 2],
  ['t2.medium', 2, 4],
  ['t2.large', 2, 8],
  ['t3.nano', 2, 0.5],
  ['t3.micro', 2, 1],
  ['t3.small', 2, 2],
  ['t3.medium', 2, 4],
  ['t3.large', 2, 8],
  ['t3.xlarge', 4, 16],
  ['t3.2xlarge', 8, 32],
  ['m5.large', 2, 8],
  ['m5.xlarge', 4, 16],
  ['m5.2xlarge', 8, 32],
  ['m5.4xlarge', 16, 64],
  ['m5.8xlarge', 32, 128],
  ['c5.large', 2, 4],
  ['c5.xlarge', 4, 8],
  ['c5.2xlarge', 8, 16],
  ['c5.4xlarge', 16, 32],
  ['r5.large', 2, 16],
  ['r5.xlarge', 4, 32],
  ['r5.2xlarge', 8, 64],
];

export const INSTANCE_TYPES: readonly InstanceType[] = Object.freeze(
  TABLE.map(([name, vcpus, gib]) => Object.freeze({ name, vcpus, memoryMiB: gib * GiB })),
);

/**
 * Bounds of `custom:` types. 1–128 vCPUs: QEMU's `pc` machine allows 255, but a launch
 * host is one server and more vCPUs than that is a typo, not a test instance. 64 MiB is
 * the least a BIOS and a small Linux kernel boot in; 1 TiB bounds what one request may
 * ask a host for (the host's own memory is checked at launch).
 */
export const CUSTOM_TYPE_LIMITS = Object.freeze({
  minVcpus: 1,
  maxVcpus: 128,
  minMemoryMiB: 64,
  maxMemoryMiB: 1024 * GiB,
});

const BY_NAME = new Map(INSTANCE_TYPES.map((t) => [t.name, t]));
/** Digits only, no sign or leading zero, at most 7 digits: parsed without surprises. */
const CUSTOM = /^custom:([1-9][0-9]{0,6})x([1-9][0-9]{0,6})$/;

/** The instance type a name or `custom:<vCPUs>x<MiB>` spec denotes; FERRY_LAUNCH_INSTANCE_TYPE_INVALID otherwise. */
export function instanceType(spec: string): InstanceType {
  const known = BY_NAME.get(spec);
  if (known) return known;
  const m = CUSTOM.exec(spec);
  if (!m) {
    throw new InstanceTypeInvalidError(
      `unknown instance type "${spec.slice(0, 64)}" (a name such as t3.micro, or custom:<vCPUs>x<MiB>)`,
      { type: spec.slice(0, 64) },
    );
  }
  const vcpus = Number(m[1]);
  const memoryMiB = Number(m[2]);
  const L = CUSTOM_TYPE_LIMITS;
  if (vcpus < L.minVcpus || vcpus > L.maxVcpus || memoryMiB < L.minMemoryMiB || memoryMiB > L.maxMemoryMiB) {
    throw new InstanceTypeInvalidError(
      `instance type ${spec} is outside ${L.minVcpus}–${L.maxVcpus} vCPUs and ` +
        `${L.minMemoryMiB}–${L.maxMemoryMiB} MiB`,
      { type: spec, vcpus, memoryMiB },
    );
  }
  return Object.freeze({ name: spec, vcpus, memoryMiB });
}
