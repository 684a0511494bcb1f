// Build the viewer page into the Python package (deepsalt/viewer/static), so users need no Node.js.
// Output is deterministic for a given package-lock.json: `npm ci && npm run build` reproduces it.
import {copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
// the package's static folder, or another folder (the test comparing a fresh build with the committed one)
const out = process.argv[2] ? resolve(process.argv[2]) : join(here, '..', 'deepsalt', 'viewer', 'static');
rmSync(out, {recursive: true, force: true}); // no chunk of an older build left behind
mkdirSync(out, {recursive: true});

const result = await esbuild.build({
  entryPoints: {viewer: join(here, 'src', 'main.js')},
  bundle: true,
  minify: true,
  format: 'esm',
  // codecs and outlines are imported on demand: each becomes a chunk the page loads when it needs it
  splitting: true,
  chunkNames: 'chunk-[name]-[hash]',
  target: ['es2022'],
  outdir: out,
  loader: {'.json': 'json'},
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));

// the licence of every npm package that ends up in the bundle, in one file beside it
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) {
    packages.add(match[1]);
  }
}
const notices = [...packages].sort().map((name) => {
  const folder = join(here, 'node_modules', name);
  const meta = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  const file = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'license'].find((f) => existsSync(join(folder, f)));
  const text = file ? readFileSync(join(folder, file), 'utf8').trim() : `(licence: ${meta.license})`;
  return `${name} ${meta.version} (${meta.license})\n\n${text}\n`;
});
writeFileSync(
  join(out, 'THIRD_PARTY_LICENSES.txt'),
  `Packages bundled into viewer.js and viewer.css (built by web/build.mjs)\n\n${notices.join('\n' + '-'.repeat(72) + '\n\n')}`,
);
