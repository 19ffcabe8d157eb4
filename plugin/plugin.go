package plugin

import (
	"context"
	"errors"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/trustgate/trustgate/plugin/pluginpb"
)

// Handshake is the go-plugin handshake both sides use. The host puts the
// magic cookie in the plugin's environment and the plugin refuses to serve
// without it. It is not a security feature: it only stops a plugin from being
// run by hand by mistake. What a plugin is allowed to be is decided by the
// digest checks before it is started.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "TRUSTGATE_PLUGIN",
	MagicCookieValue: "7c1f9e4a2b6d8053e1a4c7f2d9b0e6a3",
}

// HooksName is the name under which a plugin serves its Hooks.
const HooksName = "hooks"

// MaxMessageSize bounds one gRPC message in either direction (a request or
// response body plus its headers).
const MaxMessageSize = 64 << 20

var (
	// ErrHandshake is returned by Start when the program does not speak the
	// plugin protocol: it exits, prints something other than the handshake
	// line, offers another protocol or version, does not answer the health
	// check, or says nothing before the start timeout.
	ErrHandshake = errors.New("plugin handshake failed")
	// ErrHook is returned by a Hooks call that the plugin failed: the call
	// returned a gRPC error (a Go hook that panicked or a Python hook that
	// raised gives codes.Internal) or the plugin is gone.
	ErrHook = errors.New("plugin hook failed")
	// ErrVerdict is returned by a Hooks call whose verdict the host cannot
	// apply: no action (ACTION_UNSPECIFIED, as in an empty Verdict), an
	// action this version does not know, or REWRITE without a body.
	ErrVerdict = errors.New("invalid plugin verdict")
)

// Hooks is what a plugin implements and what the host calls. A nil verdict
// with a nil error is an error on both sides, and a verdict without an
// action is an error on the host: neither is ever an ALLOW.
type Hooks interface {
	OnRequest(ctx context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error)
	OnResponse(ctx context.Context, r *pluginpb.Response) (*pluginpb.Verdict, error)
}

// GRPCPlugin is the go-plugin plugin that carries Hooks over gRPC. Impl is
// the plugin's implementation on the serving side and nil on the host.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl Hooks
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers Impl as the Hooks service of s.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	if p.Impl == nil {
		return errors.New("plugin: GRPCPlugin.Impl is nil")
	}
	pluginpb.RegisterHooksServer(s, &hooksServer{impl: p.Impl})
	return nil
}

// GRPCClient returns Hooks that call the plugin over c.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &hooksClient{rpc: pluginpb.NewHooksClient(c)}, nil
}

// hooksClient is the host's view of a plugin's Hooks.
type hooksClient struct {
	rpc pluginpb.HooksClient
}

func (c *hooksClient) OnRequest(ctx context.Context, r *pluginpb.Request) (*pluginpb.Verdict, error) {
	v, err := c.rpc.OnRequest(ctx, r)
	return checkVerdict("OnRequest", v, err)
}

func (c *hooksClient) OnResponse(ctx context.Context, r *pluginpb.Response) (*pluginpb.Verdict, error) {
	v, err := c.rpc.OnResponse(ctx, r)
	return checkVerdict("OnResponse", v, err)
}

// checkVerdict fails closed: it passes on only the actions it knows, and
// only a REWRITE that has a body.
func checkVerdict(hook string, v *pluginpb.Verdict, err error) (*pluginpb.Verdict, error) {
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", hook, ErrHook, err)
	}
	switch a := v.GetAction(); a {
	case pluginpb.Verdict_ALLOW, pluginpb.Verdict_BLOCK:
		return v, nil
	case pluginpb.Verdict_REWRITE:
		if len(v.GetBody()) == 0 {
			return nil, fmt.Errorf("%s: %w: REWRITE without a body", hook, ErrVerdict)
		}
		return v, nil
	case pluginpb.Verdict_ACTION_UNSPECIFIED:
		return nil, fmt.Errorf("%s: %w: no action", hook, ErrVerdict)
	default:
		return nil, fmt.Errorf("%s: %w: unknown action %d", hook, ErrVerdict, int32(a))
	}
}

// hooksServer serves a plugin's Hooks. A panic in a hook or a nil verdict
// becomes a codes.Internal error for that call, not the end of the plugin.
type hooksServer struct {
	pluginpb.UnimplementedHooksServer
	impl Hooks
}

func (s *hooksServer) OnRequest(ctx context.Context, r *pluginpb.Request) (v *pluginpb.Verdict, err error) {
	defer recoverHook("OnRequest", &v, &err)
	v, err = s.impl.OnRequest(ctx, r)
	return served("OnRequest", v, err)
}

func (s *hooksServer) OnResponse(ctx context.Context, r *pluginpb.Response) (v *pluginpb.Verdict, err error) {
	defer recoverHook("OnResponse", &v, &err)
	v, err = s.impl.OnResponse(ctx, r)
	return served("OnResponse", v, err)
}

func served(hook string, v *pluginpb.Verdict, err error) (*pluginpb.Verdict, error) {
	if err == nil && v == nil {
		return nil, status.Errorf(codes.Internal, "%s returned no verdict", hook)
	}
	return v, err
}

func recoverHook(hook string, v **pluginpb.Verdict, err *error) {
	if p := recover(); p != nil {
		*v, *err = nil, status.Errorf(codes.Internal, "%s panicked: %v", hook, p)
	}
}
