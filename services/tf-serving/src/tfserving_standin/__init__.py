"""A local stand-in for TensorFlow Serving that speaks its REST and gRPC APIs.

Layers, from the bottom up (a module imports only from its own layer or below; `make test`
checks it):

core/       what both APIs share, as TF Serving's core/, servables/ and batching/
  config      TF Serving's config files (models.config, batching and monitoring) and flags' values
  errors      ServingError with TF Serving's canonical codes and their HTTP statuses
  tensors     TensorProto <-> numpy, with TF Serving's checks
  servable    one loaded SavedModel version: signatures, input checks, warmup replay
  batching    one dynamic-batching queue per version and signature
  manager     polls base paths, loads/unloads versions by policy, resolves a request's version
  api         ServingApi: predict, metadata and status, as both front ends call them
  metrics     the Prometheus metrics
  event_loop  running a process's event loop, and leaving fast once it is done
rest_api/   TF Serving's REST API
  server      the aiohttp routes, limits and status codes
  json_codec  request bodies (row and columnar, b64) <-> arrays, answers and error bodies
grpc_api/   TF Serving's gRPC API, served from a front-end process of its own
  frontend    the front-end process: the gRPC server, forwarding each call's bytes (no TensorFlow)
  bridge      the framing of calls and answers on the socketpair between the two processes
  dispatch    the model server's side: GrpcMethods answers forwarded calls; GrpcFrontEnd runs the process
server      wires the core to both APIs and runs them until SIGINT/SIGTERM
cli         `tfserving-standin`: tensorflow_model_server's flags
"""
