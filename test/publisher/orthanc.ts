/**
 * Test harness: a throw-away Orthanc (Debian packages `orthanc` + `orthanc-dicomweb`) standing in
 * for a trust's PACS. Each instance gets its own temp directory, a free loopback HTTP port, no
 * DICOM listener and no authentication, and the DICOMweb plugin at /dicom-web/.
 * If Orthanc is not installed the harness throws (CI installs it): tests must fail, not skip.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ORTHANC_BINARY = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancInstance {
  /** The Orthanc process (for CPU accounting in bench/gateway.ts). */
  pid: number;
  baseUrl: string;
  dicomWebRoot: string;
  upload(bytes: Buffer): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitUntilUp(baseUrl: string, child: ChildProcess, log: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`Orthanc exited with ${child.exitCode}: ${log().slice(-2000)}`);
    try {
      const res = await fetch(`${baseUrl}/system`);
      if (res.ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Orthanc did not answer /system within ${timeoutMs} ms: ${log().slice(-2000)}`);
}

export async function startOrthanc(name = 'PACS'): Promise<OrthancInstance> {
  if (!existsSync(ORTHANC_BINARY) || !existsSync(DICOMWEB_PLUGIN)) {
    throw new Error(`Orthanc is required for this test: install the Debian packages "orthanc" and "orthanc-dicomweb" (missing ${existsSync(ORTHANC_BINARY) ? DICOMWEB_PLUGIN : ORTHANC_BINARY})`);
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'locus-orthanc-'));
  const port = await freePort();
  const config = {
    Name: name,
    HttpPort: port,
    DicomServerEnabled: false,
    StorageDirectory: path.join(dir, 'storage'),
    IndexDirectory: path.join(dir, 'index'),
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/' },
  };
  const configFile = path.join(dir, 'orthanc.json');
  await writeFile(configFile, JSON.stringify(config));
  const child = spawn(ORTHANC_BINARY, [configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitUntilUp(baseUrl, child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    pid: child.pid as number,
    baseUrl,
    dicomWebRoot: `${baseUrl}/dicom-web`,
    upload: async (bytes) => {
      const res = await fetch(`${baseUrl}/instances`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: bytes });
      if (!res.ok) throw new Error(`Orthanc rejected an upload: HTTP ${res.status} ${await res.text()}`);
    },
    stop,
  };
}
