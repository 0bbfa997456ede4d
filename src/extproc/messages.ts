// The ext_proc messages as meshward reads and writes them: protobufjs's camelCase names of Envoy's fields. What Envoy
// sends is input from the network: every field may be absent (an unset message field decodes as null).

export interface HeaderValueMessage {
  key?: string;
  value?: string;
  rawValue?: Uint8Array;
}

export interface HeaderMapMessage {
  headers?: HeaderValueMessage[] | null;
}

export interface HttpHeadersMessage {
  headers?: HeaderMapMessage | null;
  endOfStream?: boolean;
}

export interface HttpBodyMessage {
  body?: Uint8Array;
  endOfStream?: boolean;
}

export interface HttpTrailersMessage {
  trailers?: HeaderMapMessage | null;
}

/** google.protobuf.Struct, as decoded: only string and number values are read. */
export interface StructMessage {
  fields?: Record<string, { stringValue?: string; numberValue?: number } | null> | null;
}

export type RequestKind = 'requestHeaders' | 'responseHeaders' | 'requestBody' | 'responseBody' | 'requestTrailers' | 'responseTrailers';

export interface ProcessingRequestMessage {
  /** The member of the `request` oneof that is set (protobufjs's virtual oneof property). */
  request?: RequestKind | null;
  requestHeaders?: HttpHeadersMessage | null;
  responseHeaders?: HttpHeadersMessage | null;
  requestBody?: HttpBodyMessage | null;
  responseBody?: HttpBodyMessage | null;
  requestTrailers?: HttpTrailersMessage | null;
  responseTrailers?: HttpTrailersMessage | null;
  attributes?: Record<string, StructMessage | null> | null;
  observabilityMode?: boolean;
}

export interface HeaderValueOption {
  header: { key: string; value?: string; rawValue?: Buffer };
  /** envoy.config.core.v3.HeaderValueOption.HeaderAppendAction: 2 is OVERWRITE_IF_EXISTS_OR_ADD. */
  appendAction?: number;
  append?: { value: boolean };
}

export interface HeaderMutation {
  setHeaders?: HeaderValueOption[];
  removeHeaders?: string[];
}

export interface CommonResponse {
  /** 1 is CONTINUE_AND_REPLACE. */
  status?: number;
  headerMutation?: HeaderMutation;
  bodyMutation?: { body: Buffer };
  clearRouteCache?: boolean;
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body: Buffer;
  details: string;
}

/** envoy.extensions.filters.http.ext_proc.v3.ProcessingMode: 1 SEND, 2 SKIP; bodies 0 NONE, 2 BUFFERED. */
export interface ProcessingMode {
  responseHeaderMode?: number;
  requestBodyMode?: number;
  responseBodyMode?: number;
}

export type ProcessingResponseMessage = (
  | { requestHeaders: { response?: CommonResponse } }
  | { responseHeaders: { response?: CommonResponse } }
  | { requestBody: { response?: CommonResponse } }
  | { responseBody: { response?: CommonResponse } }
  | { requestTrailers: Record<string, never> }
  | { responseTrailers: Record<string, never> }
  | { immediateResponse: ImmediateResponse }
) & { modeOverride?: ProcessingMode };
