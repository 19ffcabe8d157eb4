#!/usr/bin/env node
// Peer verifier for trustgate's interop tests: checks a Sigstore bundle
// (DSSE envelope holding an in-toto Statement v1, signed with a plain public
// key) with sigstore-js (@sigstore/verify), then checks the binding that
// sigstore-js leaves to its caller for DSSE: that the statement's subject is
// the artifact.
//
// Usage: node verify.mjs --bundle B --key PUB.pem --artifact FILE [--type PREDICATE_TYPE_URI]
//
// Exit status: 0 verified, 1 rejected (reason on stderr), 2 usage error.

import { createHash, createPublicKey } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';

const MAX_BUNDLE = 16 << 20; // a bundle or a key larger than this is refused
const MAX_KEY = 64 << 10;
const MAX_ARTIFACT = 4 * 2 ** 30; // the artifact is hashed in chunks, never held whole

const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

class UsageError extends Error {}
class Rejection extends Error {}

function usage(msg) {
  throw new UsageError(
    `${msg}\nusage: node verify.mjs --bundle B --key PUB.pem --artifact FILE [--type PREDICATE_TYPE_URI]`,
  );
}

function parseArgs(argv) {
  const names = { '--bundle': 'bundle', '--key': 'key', '--artifact': 'artifact', '--type': 'type' };
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const name = names[arg];
    if (!name) usage(`unknown argument: ${arg}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) usage(`${arg} needs a value`);
      value = argv[++i];
    }
    if (value === '') usage(`${arg} must not be empty`);
    if (name in out) usage(`${arg} given twice`);
    out[name] = value;
  }
  for (const req of ['bundle', 'key', 'artifact']) {
    if (!(req in out)) usage(`--${req} is required`);
  }
  return out;
}

// readBounded reads a whole file that must not exceed max bytes.
function readBounded(path, max, what) {
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot open ${what} ${path}: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`${what} ${path} is not a regular file`);
    if (st.size > max) throw new Rejection(`${what} ${path} is larger than ${max} bytes`);
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const n = readSync(fd, buf, off, buf.length - off, off);
      if (n === 0) break;
      off += n;
    }
    if (off !== st.size) throw new Rejection(`${what} ${path} changed while being read`);
    return buf;
  } finally {
    closeSync(fd);
  }
}

// sha256File hashes a file in chunks.
function sha256File(path) {
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new UsageError(`cannot open artifact ${path}: ${e.message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`artifact ${path} is not a regular file`);
    if (st.size > MAX_ARTIFACT) throw new Rejection(`artifact ${path} is larger than ${MAX_ARTIFACT} bytes`);
    const h = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      total += n;
      if (total > MAX_ARTIFACT) throw new Rejection(`artifact ${path} is larger than ${MAX_ARTIFACT} bytes`);
      h.update(buf.subarray(0, n));
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

function parseJSON(buf, what) {
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch (e) {
    throw new Rejection(`${what} is not JSON: ${e.message}`);
  }
}

function describe(e) {
  if (e && e.code && e.message) return `${e.code}: ${e.message}`;
  return e && e.message ? e.message : String(e);
}

function main() {
  const args = parseArgs(process.argv.slice(2));

  const bundleJSON = parseJSON(readBounded(args.bundle, MAX_BUNDLE, 'bundle'), 'bundle');
  const keyPEM = readBounded(args.key, MAX_KEY, 'key').toString('utf8');
  const artifactDigest = sha256File(args.artifact);

  let keyDER;
  try {
    keyDER = createPublicKey(keyPEM).export({ type: 'spki', format: 'der' });
  } catch (e) {
    throw new UsageError(`key ${args.key} is not a PEM public key: ${e.message}`);
  }

  let bundle;
  try {
    bundle = bundleFromJSON(bundleJSON);
  } catch (e) {
    throw new Rejection(`invalid bundle: ${describe(e)}${e.fields ? ` (${e.fields.join(', ')})` : ''}`);
  }
  if (bundle.content?.$case !== 'dsseEnvelope') {
    throw new Rejection(`bundle holds ${bundle.content?.$case}, want a DSSE envelope`);
  }
  if (bundle.verificationMaterial?.content?.$case !== 'publicKey') {
    throw new Rejection(
      `bundle's verification material is ${bundle.verificationMaterial?.content?.$case}, want a public key hint`,
    );
  }

  // The bundle names its key only by a hint; the key the caller trusts is the
  // one given on the command line, whatever the hint says.
  const hint = bundle.verificationMaterial.content.publicKey.hint ?? '';
  const emptyRoot = TrustedRoot.fromJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
  const trustMaterial = toTrustMaterial(emptyRoot, { [hint]: { rawBytes: keyDER } });
  const verifier = new Verifier(trustMaterial, {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });

  try {
    verifier.verify(toSignedEntity(bundle));
  } catch (e) {
    throw new Rejection(`sigstore-js rejected the bundle: ${describe(e)}`);
  }

  // sigstore-js checked the DSSE signature; what it signs is checked here.
  const env = bundle.content.dsseEnvelope;
  if (env.payloadType !== IN_TOTO_PAYLOAD_TYPE) {
    throw new Rejection(`DSSE payload type is ${JSON.stringify(env.payloadType)}, want ${IN_TOTO_PAYLOAD_TYPE}`);
  }
  const statement = parseJSON(Buffer.from(env.payload), 'DSSE payload');
  if (statement === null || typeof statement !== 'object' || Array.isArray(statement)) {
    throw new Rejection('DSSE payload is not a JSON object');
  }
  if (statement._type !== STATEMENT_V1) {
    throw new Rejection(`statement _type is ${JSON.stringify(statement._type)}, want ${STATEMENT_V1}`);
  }
  if (!Array.isArray(statement.subject) || statement.subject.length === 0) {
    throw new Rejection('statement has no subject');
  }
  const matched = statement.subject.some(
    (s) =>
      s !== null &&
      typeof s === 'object' &&
      s.digest !== null &&
      typeof s.digest === 'object' &&
      typeof s.digest.sha256 === 'string' &&
      s.digest.sha256.toLowerCase() === artifactDigest,
  );
  if (!matched) {
    throw new Rejection(`no subject of the statement has sha256 ${artifactDigest} (the artifact's)`);
  }
  if (args.type !== undefined && statement.predicateType !== args.type) {
    throw new Rejection(`statement predicateType is ${JSON.stringify(statement.predicateType)}, want ${args.type}`);
  }
  process.stdout.write(`verified: ${args.artifact} sha256:${artifactDigest} (${statement.predicateType})\n`);
}

try {
  main();
  process.exitCode = 0;
} catch (e) {
  if (e instanceof UsageError) {
    process.stderr.write(`verify.mjs: ${e.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`verify.mjs: rejected: ${e instanceof Rejection ? e.message : describe(e)}\n`);
    process.exitCode = 1;
  }
}
