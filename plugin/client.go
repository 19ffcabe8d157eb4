package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/trustgate/trustgate/internal/safetext"
)

// DefaultStartTimeout is the StartTimeout of the zero Options.
const DefaultStartTimeout = 10 * time.Second

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Logger receives go-plugin's messages and, when Stderr is nil, the
	// plugin's output lines. Nil: discard.
	Logger *slog.Logger
	// StartTimeout bounds the time from starting the process to a passing
	// health check. 0: DefaultStartTimeout.
	StartTimeout time.Duration
	// Stderr receives the plugin's output line by line: its standard error,
	// and for Go plugins what they write to os.Stdout and os.Stderr after
	// the handshake (go-plugin forwards it over gRPC). Nil: each line is
	// logged at debug level through Logger.
	Stderr io.Writer
	// SocketDir is the folder in which each plugin's private socket folder
	// is made; empty means os.TempDir(), which the environment (TMPDIR)
	// chooses. The gateway passes a folder of its own.
	SocketDir string
}

// Client is a running plugin. Its methods are safe for concurrent use.
type Client struct {
	gp    *goplugin.Client
	proc  *process
	hooks Hooks
	mtls  bool
}

// Start starts the plugin with cmd, waits for its handshake, checks its
// health and returns a Client whose Hooks call it.
//
// cmd is run as it is: its Path, Args, Env, Dir and SysProcAttr are not
// changed, except that go-plugin's variables are appended to cmd.Env (the
// magic cookie TRUSTGATE_PLUGIN and PLUGIN_MIN_PORT, PLUGIN_MAX_PORT,
// PLUGIN_PROTOCOL_VERSIONS, PLUGIN_CLIENT_CERT and PLUGIN_UNIX_SOCKET_DIR).
// The host's environment is never added: a nil cmd.Env gives the plugin
// those variables and nothing else. cmd.Stdin is left as it is (nil: the
// plugin reads /dev/null, never the host's standard input); cmd.Stdout and
// cmd.Stderr must be nil, Start owns them.
//
// The connection uses mutual TLS (go-plugin's AutoMTLS) when the plugin
// answers with a certificate, as Go plugins on plugin/sdk do. A plugin that
// answers without one (the Python SDK) is accepted only on a Unix socket
// inside the private (0700) directory Start created for it, which only this
// user can reach; the connection is then plain gRPC on that socket.
//
// ctx bounds the start only; the plugin runs until Kill. Errors wrap
// ErrHandshake when the program does not speak the protocol, ctx's error
// when ctx ended first, and the exec error when the program could not be
// started. The caller must call Kill on the returned Client.
func Start(ctx context.Context, cmd *exec.Cmd, opts Options) (*Client, error) {
	if cmd == nil || cmd.Process != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("starting plugin: cmd must be unstarted, with nil Stdout and Stderr")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	out := newOutput(opts.Stderr, logger.With("plugin", cmd.Path))
	proc := &process{cmd: cmd, out: out, done: make(chan struct{})}
	cfg := &goplugin.ClientConfig{
		HandshakeConfig:  Handshake,
		Plugins:          goplugin.PluginSet{HooksName: &GRPCPlugin{}},
		RunnerFunc:       proc.runner,
		StartTimeout:     timeout,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		UnixSocketConfig: &goplugin.UnixSocketConfig{TempDir: opts.SocketDir},
		Logger:           hclogTo(logger),
		SyncStdout:       out.stream(),
		SyncStderr:       out.stream(),
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageSize), grpc.MaxCallSendMsgSize(MaxMessageSize))},
	}
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(startCtx, proc.kill)
	defer stop()

	c := &Client{gp: goplugin.NewClient(cfg), proc: proc}
	if err := c.connect(startCtx, cfg); err != nil {
		proc.kill() // at once: no graceful shutdown for a plugin that failed
		c.Kill()
		_ = os.RemoveAll(proc.socketDir)
		switch {
		case proc.execErr() != nil:
			err = proc.execErr()
		case ctx.Err() != nil:
			err = ctx.Err()
		case startCtx.Err() != nil:
			err = fmt.Errorf("%w: not ready within %v", ErrHandshake, timeout)
		}
		return nil, fmt.Errorf("starting plugin %q: %w", cmd.Path, err)
	}
	return c, nil
}

// connect runs the handshake, chooses the transport, dispenses the hooks and
// checks the plugin's health.
func (c *Client) connect(ctx context.Context, cfg *goplugin.ClientConfig) error {
	addr, err := c.gp.Start()
	if err != nil {
		return fmt.Errorf("%w: %s", ErrHandshake, safetext.Clip(err.Error(), 300))
	}
	// go-plugin fills RootCAs from the certificate in the handshake line.
	// Without one, TLS cannot work: fall back to plain gRPC only on a
	// socket in the directory we made private for this plugin.
	c.mtls = cfg.TLSConfig.RootCAs != nil
	if !c.mtls {
		if addr.Network() != "unix" || !within(c.proc.socketDir, addr.String()) {
			return fmt.Errorf("%w: no TLS certificate from a plugin listening on %s %s outside its private directory",
				ErrHandshake, addr.Network(), safetext.Quote(addr.String()))
		}
		cfg.TLSConfig = nil
	}
	rpc, err := c.gp.Client()
	if err != nil {
		return fmt.Errorf("%w: connecting: %w", ErrHandshake, err)
	}
	raw, err := rpc.Dispense(HooksName)
	if err != nil {
		return fmt.Errorf("%w: dispensing %q: %w", ErrHandshake, HooksName, err)
	}
	c.hooks = raw.(Hooks)
	health := grpc_health_v1.NewHealthClient(rpc.(*goplugin.GRPCClient).Conn)
	resp, err := health.Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: goplugin.GRPCServiceName})
	if err != nil {
		return fmt.Errorf("%w: health check: %w", ErrHandshake, err)
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return fmt.Errorf("%w: health check: status %s", ErrHandshake, resp.GetStatus())
	}
	return nil
}

// within reports whether path is inside dir.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return dir != "" && err == nil && filepath.IsLocal(rel) && rel != "."
}

// Hooks returns the plugin's hooks. Their errors wrap ErrHook or ErrVerdict;
// a verdict they return has a known action, and a body when it is REWRITE.
// Callers must still check that a REWRITE body is acceptable to them.
func (c *Client) Hooks() Hooks { return c.hooks }

// Exited reports whether the plugin process has exited, as Done does.
func (c *Client) Exited() bool {
	select {
	case <-c.proc.done:
		return true
	default:
		return false
	}
}

// Done returns a channel that is closed once the plugin process has exited
// and been reaped, whether it exited by itself or through Kill. When a
// process the plugin started still holds the plugin's standard output or
// error, that is only once that process ends too, or at Kill. A caller that
// sees Done closed must still call Kill to release the connection.
func (c *Client) Done() <-chan struct{} { return c.proc.done }

// Pid is the plugin's process id.
func (c *Client) Pid() int { return c.proc.getPid() }

// Kill asks the plugin to shut down, kills it if it has not exited within
// two seconds, and returns once the process is reaped and its socket
// directory removed. It is safe to call more than once. It ends the plugin
// process only, not processes the plugin started: a caller that wants
// those gone too starts the plugin in its own process group or cgroup.
func (c *Client) Kill() { c.gp.Kill() }
