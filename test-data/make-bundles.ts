/**
 * Writes the example transaction Bundles under test-data/bundles/ from generated studies through
 * the real mapping: npx tsx test-data/make-bundles.ts
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StudyCollector, mapStudy, parsePart10, type MapOptions, type MappedStudy } from '../src/dicom';
import { transactionBundle } from '../src/publisher/bundle';
import { generateStudy, presetStudy, type StudyKind } from './generate-dicom';

const RRK: MapOptions = {
  custodianOds: 'RRK', wadoBaseUrl: 'https://pacs.rrk.example.nhs.uk/dicom-web', endpointReference: 'Endpoint/rrk-wado-rs',
  patientIdentity: { source: 'PatientID' },
};
const RJE: MapOptions = { ...RRK, custodianOds: 'RJE', wadoBaseUrl: 'https://pacs.rje.example.nhs.uk/dicom-web', endpointReference: 'Endpoint/rje-wado-rs' };

function mapped(kind: StudyKind, n: number, options: MapOptions, overrides = {}): MappedStudy {
  const collector = new StudyCollector();
  for (const i of generateStudy(presetStudy(kind, n, 2, overrides)).instances) collector.add(parsePart10(i.bytes).dataset);
  const result = mapStudy(collector.values()[0]!, options);
  if ('skipped' in result) throw new Error(`example study skipped: ${result.skipped}`);
  return result;
}

export async function writeExampleBundles(outDir: string): Promise<string[]> {
  const examples: Array<[string, MappedStudy[]]> = [
    ['rrk-ct-and-mr.json', [mapped('CT', 1, RRK, { timezoneOffset: '+0000' }), mapped('MR', 2, RRK, { studyDate: '20240704', studyTime: '141500' })]],
    ['rrk-petct-with-sr-report.json', [mapped('PT+CT', 3, RRK), mapped('CT+SR', 3, RRK)]],
    ['rje-mr-with-pdf-report.json', [mapped('MR+PDF', 1, RJE)]],
  ];
  await mkdir(outDir, { recursive: true });
  const files: string[] = [];
  for (const [name, studies] of examples) {
    const file = path.join(outDir, name);
    await writeFile(file, `${JSON.stringify(transactionBundle(studies), null, 2)}\n`);
    files.push(file);
  }
  return files;
}

if (require.main === module) {
  void writeExampleBundles(path.join(__dirname, 'bundles')).then((files) => process.stdout.write(`${files.join('\n')}\n`));
}
