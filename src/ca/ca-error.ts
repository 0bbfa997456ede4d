/** A refusal with the gRPC-style code that fits it and a message a person can act on. */
export type CaErrorCode = 'unauthenticated' | 'permission_denied' | 'invalid_argument' | 'failed_precondition' | 'unavailable' | 'internal';

export class CaError extends Error {
  constructor(
    readonly code: CaErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CaError';
  }
}
