import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseOvf, parseVmx } from '../index.js';

test('vmx: name, CPUs, memory, firmware, NICs and disks in device order; CD-ROMs and absent devices skipped', () => {
  const facts = parseVmx(
    [
      '.encoding = "UTF-8"',
      'displayName = "web|2201"',
      'numvcpus = "4"',
      'memsize = "8192"',
      'guestOS = "ubuntu-64"',
      'firmware = "efi"',
      'sata0:1.fileName = "data.vmdk"',
      'scsi0:1.fileName = "second.vmdk"',
      'scsi0:0.fileName = "boot.vmdk"',
      'scsi0:2.fileName = "gone.vmdk"',
      'scsi0:2.present = "FALSE"',
      'ide1:0.deviceType = "cdrom-image"',
      'ide1:0.fileName = "install.iso"',
      'ethernet0.present = "TRUE"',
      'ethernet0.generatedAddress = "00:0C:29:AA:BB:CC"',
      'ethernet0.networkName = "VM Network"',
      'ethernet1.present = "FALSE"',
      'ethernet1.address = "00:50:56:00:00:01"',
    ].join('\n'),
  );
  assert.deepEqual(facts, {
    displayName: 'web"01',
    cpus: 4,
    memoryMiB: 8192,
    guestOs: 'ubuntu-64',
    firmware: 'efi',
    disks: ['boot.vmdk', 'second.vmdk', 'data.vmdk'],
    nics: [{ macAddress: '00:0c:29:aa:bb:cc', network: 'VM Network' }],
  });
});

const OVF = `<?xml version="1.0" encoding="UTF-8"?>
<!-- exported -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
  xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:href="db-disk2.vmdk" ovf:id="file2"/>
    <File ovf:href="db-disk1.vmdk" ovf:id="file1"/>
  </References>
  <DiskSection>
    <Disk ovf:capacity="16" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1"/>
    <Disk ovf:capacity="4" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
  </DiskSection>
  <VirtualSystem ovf:id="db01">
    <Name>db &amp; cache</Name>
    <OperatingSystemSection ovf:id="94"><Description>Ubuntu Linux (64-bit)</Description></OperatingSystemSection>
    <VirtualHardwareSection>
      <Item><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^30</rasd:AllocationUnits><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>4</rasd:VirtualQuantity></Item>
      <Item><rasd:Address>00:50:56:01:02:03</rasd:Address><rasd:Connection>LAN</rasd:Connection><rasd:ResourceType>10</rasd:ResourceType></Item>
      <Item><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:HostResource>ovf:/disk/vmdisk2</rasd:HostResource><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>`;

test('ovf: facts from the hardware section, disks in hardware order through DiskSection and References', () => {
  assert.deepEqual(parseOvf(OVF), {
    name: 'db & cache',
    cpus: 2,
    memoryMiB: 4096,
    guestOs: 'Ubuntu Linux (64-bit)',
    disks: ['db-disk1.vmdk', 'db-disk2.vmdk'],
    nics: [{ macAddress: '00:50:56:01:02:03', network: 'LAN' }],
  });
});

test('ovf: hostile or broken XML is refused as corrupt, fast, without entity expansion', () => {
  const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><Envelope><References><File href="&lol2;" id="f"/></References><DiskSection><Disk diskId="d" fileRef="f"/></DiskSection></Envelope>`;
  const r = parseOvf(bomb);
  assert.deepEqual(r.disks, ['&lol2;'], 'unknown entities stay literal text');
  for (const bad of [
    '<Envelope><a></b></Envelope>',
    '<Envelope>',
    'not xml <',
    `${'<a>'.repeat(100)}${'</a>'.repeat(100)}`,
  ]) {
    const started = Date.now();
    assert.throws(() => parseOvf(bad), { code: 'FERRY_IMAGE_CORRUPT' });
    assert.ok(Date.now() - started < 1000);
  }
  assert.throws(() => parseOvf(' '.repeat(2 * 1024 * 1024)), { code: 'FERRY_IMAGE_CORRUPT' });
});
