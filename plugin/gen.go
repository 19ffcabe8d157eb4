package plugin

// The Go and Python code for proto/trustgate/plugin/v1/hooks.proto is
// generated and checked in. To regenerate it, put these on PATH:
//
//   - protoc 3.21.12 (Debian bookworm's protobuf-compiler; its --python_out
//     matches Debian's python3-protobuf 3.21, which the Python SDK runs on),
//   - protoc-gen-go v1.36.12
//     (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12),
//   - protoc-gen-go-grpc v1.6.2
//     (go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2),
//
// and run go generate ./plugin. The Python module is generated from the
// proto's own folder so that it lands in the package as hooks_pb2.py.

//go:generate protoc -I proto --go_out=. --go_opt=module=github.com/trustgate/trustgate/plugin --go-grpc_out=. --go-grpc_opt=module=github.com/trustgate/trustgate/plugin trustgate/plugin/v1/hooks.proto
//go:generate protoc -I proto/trustgate/plugin/v1 --python_out=python/trustgate_plugin hooks.proto
