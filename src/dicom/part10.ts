/**
 * DICOM Part 10 files (PS3.10 §7: 128-byte preamble, "DICM", File Meta group, dataset) read with
 * dcmjs, headers only. A publisher walks folders of 100k files, so a file is read in growing
 * prefixes and parsed up to PixelData (7FE0,0010): dcmjs stops there without reading its value,
 * so pixel data is neither decoded nor (for any file larger than the first prefix) read from disk.
 */
import { open } from 'node:fs/promises';
import * as dcmjs from 'dcmjs';
import { TAG, type DicomJsonDataset } from './dicom-json';

// dcmjs logs parse problems to the console itself; the publisher reports them, once, its own way.
dcmjs.log.setLevel('silent');

const FIRST_PREFIX = 64 * 1024;

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/**
 * Parses a Part 10 buffer (the whole file or a prefix of it) into a DICOM JSON dataset, stopping
 * at PixelData. Throws when the bytes are not DICOM Part 10 or end mid-element. Returns whether
 * the parse reached PixelData (`complete`), so a caller holding a prefix knows it saw every header.
 */
export function parsePart10(bytes: Uint8Array): { dataset: DicomJsonDataset; reachedPixelData: boolean } {
  const dict = dcmjs.data.DicomMessage.readFile(toArrayBuffer(bytes), { untilTag: TAG.PixelData, ignoreErrors: false });
  const dataset = dict.dict as DicomJsonDataset;
  const reachedPixelData = TAG.PixelData in dataset;
  delete dataset[TAG.PixelData];
  return { dataset, reachedPixelData };
}

/**
 * Reads a file's DICOM header: first 64 KiB, growing ×4 until the parse reaches PixelData or the
 * whole file has been read (objects without pixel data, e.g. SR, are small).
 */
export async function readPart10Header(path: string): Promise<DicomJsonDataset> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    let length = Math.min(FIRST_PREFIX, size);
    for (;;) {
      const bytes = new Uint8Array(length);
      const { bytesRead } = await handle.read(bytes, 0, length, 0);
      const whole = bytesRead >= size;
      try {
        const { dataset, reachedPixelData } = parsePart10(bytes.subarray(0, bytesRead));
        if (reachedPixelData || whole) return dataset;
      } catch (err) {
        if (whole) throw err;
      }
      length = Math.min(length * 4, size);
    }
  } finally {
    await handle.close();
  }
}
