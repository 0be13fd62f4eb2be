/** `ferry image map FILE [--json]`: the tagged extents, streamed (memory stays flat). */
import { COMMON_IMAGE_OPTIONS, needPositionals, parse } from '../args.js';
import { withDisk } from './image-open.js';

const USAGE = 'ferry image map FILE [--json] [-f FORMAT] [--no-backing] [--allow-external-references]';

export async function imageMap(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, COMMON_IMAGE_OPTIONS, USAGE);
  const [file] = needPositionals(positionals, 1, USAGE) as [string];
  await withDisk(file, values, async (disk) => {
    const out: string[] = [];
    const flush = () => {
      if (out.length) process.stdout.write(out.join(''));
      out.length = 0;
    };
    if (values.json) out.push('[');
    else out.push(`${'offset'.padStart(16)} ${'length'.padStart(16)} ${'kind'.padEnd(12)} depth source\n`);
    let first = true;
    for await (const e of disk.map()) {
      if (values.json) {
        const rec = {
          offset: e.offset,
          length: e.length,
          kind: e.kind,
          depth: e.depth,
          ...(e.source ? { source: e.source } : {}),
          ...(e.fileOffset !== undefined ? { fileOffset: e.fileOffset } : {}),
        };
        out.push(`${first ? '\n' : ',\n'}  ${JSON.stringify(rec)}`);
      } else {
        out.push(
          `${String(e.offset).padStart(16)} ${String(e.length).padStart(16)} ${e.kind.padEnd(12)} ` +
            `${String(e.depth).padStart(5)} ${e.source}\n`,
        );
      }
      first = false;
      if (out.length >= 1024) flush();
    }
    if (values.json) out.push(first ? ']\n' : '\n]\n');
    flush();
  });
  return 0;
}
