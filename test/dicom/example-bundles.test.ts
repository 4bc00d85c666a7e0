import { readFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeExampleBundles } from '../../test-data/make-bundles';

describe('example Bundles in test-data/bundles', () => {
  it('when regenerated, then they equal the committed files (the mapping and the examples agree)', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'locus-bundles-'));
    try {
      for (const file of await writeExampleBundles(dir)) {
        const committed = await readFile(path.join(__dirname, '../../test-data/bundles', path.basename(file)), 'utf8');
        expect(await readFile(file, 'utf8')).toBe(committed);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
