/**
 * The qemu-system-x86_64 command line of an instance, as a pure function of its plan (unit
 * tested without QEMU). Choices and their reasons:
 *
 * - `-machine pc` (i440fx): every bus below exists on it (PIIX IDE, AHCI, virtio), and it
 *   is what most migrated BIOS guests were installed on. OVMF (UEFI) boots on it too.
 * - KVM with `-cpu host` when /dev/kvm is usable; TCG with `-cpu max` otherwise (the
 *   default qemu64 model lacks SSE4.2/POPCNT, which x86-64-v2 distributions such as RHEL 9
 *   require). Nested KVM that refuses `host` gets qemu64 (cpuModel() in host.ts probes).
 * - `-nodefaults -no-user-config`: only the devices listed here; the host's QEMU config
 *   files cannot change an instance.
 * - Serial console to a file (append mode: the console log can be truncated under QEMU,
 *   see console-log.ts); QMP on a unix socket; no display.
 * - `-sandbox on,…=deny` (seccomp, libvirt's default set): a guest that escapes into QEMU
 *   cannot spawn programs, gain privileges or use obsolete system calls. Instances run
 *   migrated servers: untrusted code.
 * - Option values are escaped the QEMU way (a comma is doubled), so any path is safe.
 */
import type { Accelerator, OvmfPaths } from './host.js';
import type { DiskBus, Network, NicModel, PortForward } from './options.js';

export interface QemuPlan {
  readonly name: string;
  readonly accel: Accelerator;
  /** The CPU model (cpuModel() in host.ts); default: `host` under KVM, `max` under TCG. */
  readonly cpu?: string;
  readonly vcpus: number;
  readonly memoryMiB: number;
  /** qcow2 overlays, boot disk first. */
  readonly overlays: readonly string[];
  readonly bus: DiskBus;
  readonly nic: NicModel;
  readonly mac: string;
  readonly network?: Network;
  readonly forwards?: readonly PortForward[];
  readonly seedIso?: string | undefined;
  /** UEFI: the firmware code and this instance's copy of the variable store. */
  readonly uefi?: OvmfPaths | undefined;
  readonly consoleLog: string;
  readonly qmpSocket: string;
  readonly pidFile: string;
  readonly noReboot: boolean;
}

/** QEMU's option-value escaping: `,` separates keys, so a literal comma is written twice. */
export function qemuValue(s: string): string {
  return s.replaceAll(',', ',,');
}

function diskDevice(bus: DiskBus, i: number): string {
  const common = `drive=disk${i},bootindex=${i + 1}`;
  switch (bus) {
    case 'virtio':
      return `virtio-blk-pci,${common}`;
    case 'ide':
      // Two PIIX channels of two units: disks 0–3 on ide.0/0, ide.0/1, ide.1/0, ide.1/1.
      return `ide-hd,${common},bus=ide.${i >> 1},unit=${i & 1}`;
    case 'sata':
      return `ide-hd,${common},bus=ahci0.${i}`;
    case 'scsi':
      return `scsi-hd,${common},bus=scsi0.0,channel=0,scsi-id=${i},lun=0`;
  }
}

export function qemuArgs(p: QemuPlan): string[] {
  const a: string[] = ['-name', p.name, '-nodefaults', '-no-user-config'];
  a.push('-machine', `pc,accel=${p.accel}`, '-cpu', p.cpu ?? (p.accel === 'kvm' ? 'host' : 'max'));
  a.push('-smp', String(p.vcpus), '-m', String(p.memoryMiB));
  a.push('-display', 'none');
  a.push('-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  a.push(
    '-chardev',
    `file,id=console,path=${qemuValue(p.consoleLog)},append=on`,
    '-serial',
    'chardev:console',
  );
  a.push('-chardev', `socket,id=qmp,path=${qemuValue(p.qmpSocket)},server=on,wait=off`);
  a.push('-mon', 'chardev=qmp,mode=control');
  a.push('-pidfile', p.pidFile);
  if (p.uefi) {
    a.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${qemuValue(p.uefi.code)}`);
    a.push('-drive', `if=pflash,format=raw,unit=1,file=${qemuValue(p.uefi.vars)}`);
  }
  if (p.bus === 'sata') a.push('-device', 'ahci,id=ahci0');
  if (p.bus === 'scsi') a.push('-device', 'virtio-scsi-pci,id=scsi0');
  p.overlays.forEach((o, i) => {
    // discard=unmap: a guest TRIM frees overlay clusters instead of growing the file.
    a.push('-drive', `file=${qemuValue(o)},format=qcow2,if=none,id=disk${i},cache=writeback,discard=unmap`);
    a.push('-device', diskDevice(p.bus, i));
  });
  if (p.seedIso) {
    a.push('-drive', `file=${qemuValue(p.seedIso)},format=raw,if=none,id=seed,media=cdrom,readonly=on`);
    // The last IDE unit: free whatever the bus (ide disks use at most the first three with a seed).
    a.push('-device', 'ide-cd,drive=seed,bus=ide.1,unit=1');
  }
  if (p.nic === 'none') a.push('-nic', 'none');
  else if (p.network?.kind === 'tap') {
    a.push('-nic', `tap,ifname=${p.network.ifname},script=no,downscript=no,model=${p.nic},mac=${p.mac}`);
  } else {
    // Forwards listen on loopback only: probes and the operator, never the network.
    const fwd = (p.forwards ?? [])
      .map((f) => `,hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`)
      .join('');
    a.push('-nic', `user,model=${p.nic},mac=${p.mac}${fwd}`);
  }
  if (p.noReboot) a.push('-no-reboot');
  return a;
}
