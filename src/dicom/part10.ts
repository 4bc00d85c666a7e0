/**
 * DICOM Part 10 files (PS3.10 §7: 128-byte preamble, "DICM", File Meta group, dataset) read with
 * dcmjs, headers only. A publisher walks folders of 100k files, so a file is read in growing
 * prefixes and parsed up to PixelData (7FE0,0010): dcmjs stops there without reading its value,
 * so pixel data is neither decoded nor (for any file larger than the first prefix) read from disk.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import * as dcmjs from 'dcmjs';
import { TAG, type DicomJsonDataset } from './dicom-json';

// dcmjs logs parse problems to the console itself; the publisher reports them, once, its own way.
dcmjs.log.setLevel('silent');

const FIRST_PREFIX = 16 * 1024;

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
 * Reads a file's DICOM header: a first 16 KiB read (most headers, and whole small objects such as
 * SR), then ×4 prefixes until the parse reaches PixelData or the file ends. A short read means the
 * whole file is in hand, so no stat call is needed. The reads block: a header costs a few hundred
 * microseconds, and header reading runs in worker threads (publisher/header-pool.ts), where a
 * direct system call is cheaper than a round trip through libuv's thread pool.
 */
export function readPart10Header(path: string): DicomJsonDataset {
  const fd = openSync(path, 'r');
  try {
    let length = FIRST_PREFIX;
    for (;;) {
      const bytes = new Uint8Array(length);
      const bytesRead = readSync(fd, bytes, 0, length, 0);
      const whole = bytesRead < length;
      try {
        const { dataset, reachedPixelData } = parsePart10(bytes.subarray(0, bytesRead));
        if (reachedPixelData || whole) return dataset;
      } catch (err) {
        if (whole) throw err;
      }
      length *= 4;
    }
  } finally {
    closeSync(fd);
  }
}
