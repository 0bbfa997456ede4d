// @peculiar/x509 needs the reflect-metadata polyfill and a WebCrypto provider before first use; import it from
// here so that both are always set up.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

// The two WebCrypto typings (DOM and node:crypto) differ only in name.
x509.cryptoProvider.set(webcrypto as never);

export { x509 };
