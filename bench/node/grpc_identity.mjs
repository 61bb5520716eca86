// A grpc-js unary method on raw bytes: no protobuf, so that the baselines measure the transport
// and not a serializer. Shared by grpc_echo.mjs and fanout_driver.mjs.
const identity = (b) => b;

/** The method definition for `path` (e.g. "/bench.Echo/Echo"), Buffer in and Buffer out. */
export function unaryBytes(path) {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}
