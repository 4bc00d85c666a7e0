/**
 * Code mappings used by the DICOM → FHIR pointer mapping.
 */
import { NICIP_SYSTEM, SNOMED_SYSTEM } from '../registry/codes';
import type { Coding } from './fhir-types';

/**
 * BodyPartExamined (0018,0015) defined terms → SNOMED CT, from DICOM PS3.16 Annex L
 * ("Correspondence of Anatomic Region Codes and Body Part Examined Defined Terms"). The common
 * terms of general radiology, CT, MR, mammography and NM; unknown terms give no bodySite rather
 * than a guess.
 */
const BODY_PART: Record<string, [string, string]> = {
  ABDOMEN: ['818981001', 'Abdomen'],
  ABDOMENPELVIS: ['818982008', 'Abdomen and Pelvis'],
  ANKLE: ['70258002', 'Ankle joint'],
  AORTA: ['15825003', 'Aorta'],
  BRAIN: ['12738006', 'Brain'],
  BREAST: ['76752008', 'Breast'],
  CHEST: ['43799004', 'Chest'],
  CHESTABDOMEN: ['416550000', 'Chest and Abdomen'],
  CHESTABDPELVIS: ['416775004', 'Chest, Abdomen and Pelvis'],
  CLAVICLE: ['51299004', 'Clavicle'],
  COCCYX: ['64688005', 'Coccyx'],
  CSPINE: ['122494005', 'Cervical spine'],
  ELBOW: ['16953009', 'Elbow joint'],
  EXTREMITY: ['66019005', 'Extremity'],
  FACE: ['89545001', 'Face'],
  FEMUR: ['71341001', 'Femur'],
  FINGER: ['7569003', 'Finger'],
  FOOT: ['56459004', 'Foot'],
  FOREARM: ['14975008', 'Forearm'],
  HAND: ['85562004', 'Hand'],
  HEAD: ['69536005', 'Head'],
  HEADNECK: ['774007', 'Head and Neck'],
  HEART: ['80891009', 'Heart'],
  HIP: ['24136001', 'Hip joint'],
  HUMERUS: ['85050009', 'Humerus'],
  JAW: ['661005', 'Jaw region'],
  KIDNEY: ['64033007', 'Kidney'],
  KNEE: ['72696002', 'Knee'],
  LIVER: ['10200004', 'Liver'],
  LOWERLIMB: ['61685007', 'Lower limb'],
  LSPINE: ['122496007', 'Lumbar spine'],
  LSSPINE: ['1217253001', 'Lumbo-sacral spine'],
  LUNG: ['39607008', 'Lung'],
  NECK: ['45048000', 'Neck'],
  NECKCHEST: ['417437006', 'Neck and Chest'],
  PELVIS: ['816092008', 'Pelvis'],
  PROSTATE: ['41216001', 'Prostate'],
  RIB: ['113197003', 'Rib'],
  SHOULDER: ['16982005', 'Shoulder'],
  SIJOINT: ['39723000', 'Sacroiliac joint'],
  SKULL: ['89546000', 'Skull'],
  SPINE: ['421060004', 'Spine'],
  SSPINE: ['54735007', 'Sacrum'],
  TSPINE: ['122495006', 'Thoracic spine'],
  THORAX: ['43799004', 'Thorax'],
  TLSPINE: ['1217256009', 'Thoraco-lumbar spine'],
  UPPERLIMB: ['53120007', 'Upper limb'],
  WHOLEBODY: ['38266002', 'Entire body'],
  WRIST: ['74670003', 'Wrist joint'],
};

export function bodySiteCoding(bodyPartExamined: string | undefined): Coding | undefined {
  if (!bodyPartExamined) return undefined;
  const hit = BODY_PART[bodyPartExamined.trim().toUpperCase().replace(/\s+/g, '')];
  return hit ? { system: SNOMED_SYSTEM, code: hit[0], display: hit[1] } : undefined;
}

/** Laterality (0020,0060) R | L (PS3.3 C.7.3.1) → SNOMED CT (DICOM CID 244); B tolerated. */
const LATERALITY: Record<string, [string, string]> = {
  R: ['24028007', 'Right'],
  L: ['7771000', 'Left'],
  B: ['51440002', 'Right and left'],
};

export function lateralityCoding(laterality: string | undefined): Coding | undefined {
  const hit = laterality ? LATERALITY[laterality.trim().toUpperCase()] : undefined;
  return hit ? { system: SNOMED_SYSTEM, code: hit[0], display: hit[1] } : undefined;
}

/**
 * ProcedureCodeSequence coding scheme designators (PS3.16 §8) → FHIR systems. NICIP has no
 * registered DICOM designator, so the private "99NICIP" and the bare "NICIP" are both seen.
 * Only "SCT" is SNOMED CT; "SRT"/"SNM3" are legacy SNOMED RT/3 codes, not valid in
 * http://snomed.info/sct, and are dropped. Local schemes are dropped too.
 */
export function procedureSystem(designator: string): string | undefined {
  const d = designator.trim().toUpperCase();
  if (d === '99NICIP' || d === 'NICIP') return NICIP_SYSTEM;
  if (d === 'SCT') return SNOMED_SYSTEM;
  return undefined;
}

/** Report SOP classes (PS3.4 Annex B.5): SR Basic Text, Enhanced, Comprehensive; Encapsulated PDF. */
export const REPORT_SOP_CLASSES: ReadonlySet<string> = new Set([
  '1.2.840.10008.5.1.4.1.1.88.11',
  '1.2.840.10008.5.1.4.1.1.88.22',
  '1.2.840.10008.5.1.4.1.1.88.33',
  '1.2.840.10008.5.1.4.1.1.104.1',
]);
