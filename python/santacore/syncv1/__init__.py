"""santacore's schema of Santa's sync v1 messages (package `santa.sync.v1`), generated from
proto/santa_sync_v1.proto by proto/generate.py (grpcio-tools' protoc; checked in, see that script).

Import the generated module where it is needed — ``from santacore.syncv1 import santa_sync_v1_pb2 as pb`` — so
that `import santacore` never loads protobuf. Both the sync client (santacore.sync) and the testing server
(santacore.testing) use it; it imports nothing else of santacore."""
