/**
 * The few dcmjs entry points Locus uses (dcmjs ships no type declarations). The dataset shape is
 * the DICOM JSON model of PS3.18 §F.2: keys are 8-hex-digit tags, values `{ vr, Value }`.
 */
declare module 'dcmjs' {
  export interface DcmjsElement {
    vr?: string;
    Value?: unknown;
    InlineBinary?: string;
    BulkDataURI?: string;
  }
  export type DcmjsDataset = Record<string, DcmjsElement>;
  export interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }
  export class DicomDict {
    constructor(meta: DcmjsDataset);
    meta: DcmjsDataset;
    dict: DcmjsDataset;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  export const data: {
    DicomDict: typeof DicomDict;
    DicomMessage: { readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict };
    DicomMetaDictionary: {
      naturalizeDataset(dataset: DcmjsDataset): Record<string, unknown>;
      denaturalizeDataset(dataset: Record<string, unknown>): DcmjsDataset;
    };
  };
  export const log: { setLevel(level: string): void; getLevel(): number };
}
