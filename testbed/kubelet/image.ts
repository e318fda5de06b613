// An OCI image built offline from Debian's busybox-static: one uncompressed layer holding /bin/busybox and
// a few applet links, packed as an OCI image-layout tarball that `ctr image import` and `podman load`
// read. It is the sandbox ("pause") image of our private containerd and the image ctr and podman run:
// no registry is reachable here, and a pod's network does not care what its pause process is.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const BUSYBOX = '/bin/busybox';
/** The name the image is imported under: the sandbox image, and what ctr and podman run. */
export const BUSYBOX_IMAGE = 'localhost/contivk8s/busybox:offline';
const APPLETS = ['sh', 'sleep', 'ip', 'ping', 'cat', 'ls', 'hostname'];
const OCI_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };

interface Blob {
  mediaType: string;
  digest: string;
  size: number;
}

function writeBlob(layout: string, mediaType: string, bytes: Buffer): Blob {
  const hex = createHash('sha256').update(bytes).digest('hex');
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', hex), bytes);
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/**
 * Writes `<workDir>/busybox-oci.tar` for image `name` whose default command is `sleep infinity` (a Cmd, not
 * an Entrypoint, so `run <image> sh -c ...` replaces it); returns the tarball's path.
 */
export function buildBusyboxImage(workDir: string, name = BUSYBOX_IMAGE): string {
  if (!fs.existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: apt-get install -y busybox-static`);
  const rootfs = path.join(workDir, 'rootfs');
  const layout = path.join(workDir, 'layout');
  fs.rmSync(rootfs, { recursive: true, force: true });
  fs.rmSync(layout, { recursive: true, force: true });
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'etc', 'tmp']) fs.mkdirSync(path.join(rootfs, d));
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of APPLETS) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));

  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  const layerTar = path.join(workDir, 'layer.tar');
  // fixed owner, order and mtime: the same busybox always gives the same layer digest
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0', '-C', rootfs, '-cf', layerTar, '.']);
  const layerBytes = fs.readFileSync(layerTar);
  fs.rmSync(layerTar);
  const layer = writeBlob(layout, 'application/vnd.oci.image.layer.v1.tar', layerBytes);
  const config = writeBlob(
    layout,
    'application/vnd.oci.image.config.v1+json',
    json({
      architecture: OCI_ARCH[process.arch] ?? process.arch,
      os: 'linux',
      config: { Cmd: ['/bin/sleep', 'infinity'], Env: ['PATH=/bin'], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [layer.digest] }, // uncompressed: the diff ID is the digest
    }),
  );
  const manifest = writeBlob(
    layout,
    'application/vnd.oci.image.manifest.v1+json',
    json({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }),
  );
  const tag = name.slice(name.lastIndexOf(':') + 1);
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...manifest, annotations: { 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  fs.writeFileSync(path.join(layout, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  const tarball = path.join(workDir, 'busybox-oci.tar');
  execFileSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '--sort=name', '-C', layout, '-cf', tarball, '.']);
  fs.rmSync(rootfs, { recursive: true, force: true });
  fs.rmSync(layout, { recursive: true, force: true });
  return tarball;
}
