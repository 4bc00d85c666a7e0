/**
 * Loads the real fhir-kit-client (ESM-only, `exports` has only an "import" condition) inside
 * jest's CommonJS module registry. jest.config.js neither maps nor transforms it, and jest on
 * Node 20 refuses require(esm), so this transpiles the package's own dist files with swc (the
 * same transform jest uses for our sources) and evaluates them. The library code is unchanged.
 * Remove once jest.config.js gains a moduleNameMapper + transformIgnorePatterns entry for it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { transformSync } from '@swc/core';

type ModuleRecord = { exports: Record<string, unknown> };

export function loadFhirKitClient(): Record<string, unknown> {
  const distDir = path.join(process.cwd(), 'node_modules', 'fhir-kit-client', 'dist');
  const cache = new Map<string, ModuleRecord>();
  const load = (file: string): Record<string, unknown> => {
    const cached = cache.get(file);
    if (cached) return cached.exports;
    const record: ModuleRecord = { exports: {} };
    cache.set(file, record);
    const source = fs.readFileSync(file, 'utf8');
    const { code } = transformSync(source, {
      filename: file,
      jsc: { target: 'es2022', parser: { syntax: 'ecmascript' } },
      module: { type: 'commonjs' },
    });
    const localRequire = (spec: string): unknown =>
      spec.startsWith('.') ? load(path.resolve(path.dirname(file), spec)) : require(spec);
    // eslint-disable-next-line @typescript-eslint/no-implied-eval
    new Function('require', 'module', 'exports', code)(localRequire, record, record.exports);
    return record.exports;
  };
  return load(path.join(distDir, 'index.js'));
}
