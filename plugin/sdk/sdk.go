package sdk

import (
	"os"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/trustgate/trustgate/plugin"
	"github.com/trustgate/trustgate/plugin/pluginpb"
)

// Serve serves h to the gateway that started this process and returns when
// the gateway closes the connection. It exits the process with status 1
// when it was not started by a gateway (no handshake cookie).
func Serve(h plugin.Hooks) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: plugin.Handshake,
		Plugins:         goplugin.PluginSet{plugin.HooksName: &plugin.GRPCPlugin{Impl: h}},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(plugin.MaxMessageSize), grpc.MaxSendMsgSize(plugin.MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:       "plugin",
			Level:      hclog.Info,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
}

// Allow passes the request or response on unchanged.
func Allow() *pluginpb.Verdict {
	return &pluginpb.Verdict{Action: pluginpb.Verdict_ALLOW}
}

// Block stops the request or response; reason is logged by the gateway and
// may be shown to the client.
func Block(reason string) *pluginpb.Verdict {
	return &pluginpb.Verdict{Action: pluginpb.Verdict_BLOCK, Reason: reason}
}

// Rewrite replaces the body with body. The gateway rejects an empty body.
func Rewrite(body []byte) *pluginpb.Verdict {
	return &pluginpb.Verdict{Action: pluginpb.Verdict_REWRITE, Body: body}
}
