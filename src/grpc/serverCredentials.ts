import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, type TlsFiles } from '../config.js';

/** How the server is reached: plaintext, TLS, or TLS with a client certificate required. */
export type TlsMode = 'off' | 'tls' | 'mutual';

export function tlsMode(tls: TlsFiles | undefined): TlsMode {
  if (tls === undefined) return 'off';
  return tls.clientCaFile === undefined ? 'tls' : 'mutual';
}

/**
 * The server's credentials from QUOTA_TLS_CERT / QUOTA_TLS_KEY / QUOTA_TLS_CLIENT_CA: plaintext
 * when unset; TLS; or mutual TLS, where a client must present a certificate signed by the
 * client CA or its handshake fails. Files are read and checked once, at start: a missing or
 * unreadable file, one that is not PEM, or a key that does not belong to the certificate throws
 * a ConfigError naming the variable, before anything else starts.
 */
export function loadServerCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (tls === undefined) return grpc.ServerCredentials.createInsecure();
  const problems: string[] = [];
  const read = (name: string, file: string): Buffer | undefined => {
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push(`${name}=${file}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
      return undefined;
    }
  };
  const parse = <T>(name: string, file: string, what: string, f: () => T): T | undefined => {
    try {
      return f();
    } catch (err) {
      problems.push(`${name}=${file}: not a PEM ${what} (${(err as Error).message})`);
      return undefined;
    }
  };

  const certPem = read('QUOTA_TLS_CERT', tls.certFile);
  const keyPem = read('QUOTA_TLS_KEY', tls.keyFile);
  const caPem =
    tls.clientCaFile === undefined ? undefined : read('QUOTA_TLS_CLIENT_CA', tls.clientCaFile);
  const cert =
    certPem &&
    parse('QUOTA_TLS_CERT', tls.certFile, 'certificate', () => new X509Certificate(certPem));
  const key: KeyObject | undefined =
    keyPem && parse('QUOTA_TLS_KEY', tls.keyFile, 'private key', () => createPrivateKey(keyPem));
  if (caPem && tls.clientCaFile !== undefined) {
    parse('QUOTA_TLS_CLIENT_CA', tls.clientCaFile, 'certificate', () => new X509Certificate(caPem));
  }
  if (cert && key && !cert.checkPrivateKey(key)) {
    problems.push(
      `QUOTA_TLS_KEY=${tls.keyFile}: does not match the certificate in QUOTA_TLS_CERT=${tls.certFile}`,
    );
  }
  if (problems.length === 0 && certPem && keyPem) {
    try {
      // What the TLS server itself will do with them, so that it cannot fail later.
      createSecureContext({ cert: certPem, key: keyPem, ca: caPem });
    } catch (err) {
      problems.push(`QUOTA_TLS_*: the TLS context cannot be made (${(err as Error).message})`);
    }
  }
  if (problems.length > 0 || !certPem || !keyPem) throw new ConfigError(problems);
  return grpc.ServerCredentials.createSsl(
    caPem ?? null,
    [{ cert_chain: certPem, private_key: keyPem }],
    caPem !== undefined,
  );
}
