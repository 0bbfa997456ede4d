/** A problem at a place in an OpenAPI document; its message is `POINTER: REASON`. */
export class OpenApiError extends Error {
  constructor(pointer: string, reason: string) {
    super(`${pointer === '' ? '(the document)' : pointer}: ${reason}`);
    this.name = 'OpenApiError';
  }
}
